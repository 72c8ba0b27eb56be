"""Running the worker as a process: one at a time (a file lock), a pid file for `stop`,
SIGTERM/SIGINT finish the current cycle and exit, and a status readable while it runs."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from omegaconf import DictConfig

from recops.config import find_project_root
from recops.errors import RecopsError
from recops.worker.cycle import CycleRecord, Worker
from recops.worker.incoming import waiting_files
from recops.worker.settings import WorkerSettings
from recops.worker.state import WorkerState, iso

log = logging.getLogger(__name__)


class WorkerBusyError(RecopsError):
    """Another worker process holds the lock for this work_dir."""


@contextmanager
def worker_lock(settings: WorkerSettings) -> Iterator[None]:
    """Exclusive lock for the work dir (released by the OS if the process dies), plus the pid
    file `recops worker stop` reads."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = settings.lock_file.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise WorkerBusyError(
            f"a worker is already running (pid {read_pid(settings.pid_file) or '?'}); "
            "stop it with `recops worker stop`"
        ) from exc
    settings.pid_file.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        settings.pid_file.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT ask for a graceful stop: the running cycle finishes first."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.warning("%s received: stopping after the current cycle", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(
    cfg: DictConfig,
    once: bool = False,
    on_cycle: Callable[[CycleRecord], None] | None = None,
    stop: threading.Event | None = None,
) -> list[CycleRecord]:
    """Cycles every `worker.poll_interval` until stopped (or one with `once`)."""
    worker = Worker(cfg)
    stop = stop or threading.Event()
    records: list[CycleRecord] = []
    with worker_lock(worker.settings), stop_on_signals(stop):
        worker.settings.incoming_dir.mkdir(parents=True, exist_ok=True)
        log.info("worker started (pid %d), watching %s", os.getpid(), worker.settings.incoming_dir)
        while True:
            records.append(worker.run_cycle())
            if on_cycle is not None:
                on_cycle(records[-1])
            if once or stop.wait(worker.settings.poll_interval.total_seconds()):
                break
    return records


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def lock_held(settings: WorkerSettings) -> bool:
    """Whether a worker holds the work dir's lock. More reliable than probing the pid: the
    lock goes with the process (also when it is a zombie not yet reaped, or the pid is reused)."""
    if not settings.lock_file.exists():
        return False
    with settings.lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def stop_worker(cfg: DictConfig, timeout: float = 600.0) -> int | None:
    """SIGTERM the running worker and wait until it exited; returns its pid (None: none ran)."""
    settings = WorkerSettings.from_config(cfg, find_project_root())
    pid = read_pid(settings.pid_file)
    if pid is None or not lock_held(settings):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout
    while lock_held(settings):
        if time.monotonic() > deadline:
            raise RecopsError(f"worker pid {pid} still running after {timeout:.0f} s")
        time.sleep(0.2)
    return pid


def worker_status(cfg: DictConfig) -> dict[str, Any]:
    """Last cycle, whether one is running, when the next is due, and the files waiting."""
    settings = WorkerSettings.from_config(cfg, find_project_root())
    state = WorkerState.load(settings.state_file)
    running = lock_held(settings)
    pid = read_pid(settings.pid_file)
    last = state.last_cycle or {}
    return {
        "running": running,
        "pid": pid if running else None,
        "current_cycle": state.running if running else None,
        "last_cycle": last or None,
        "next_cycle_due": _next_cycle(last, settings) if running else None,
        "next_scheduled_retrain": _next_retrain(state, settings),
        "queue": [p.name for p in waiting_files(settings.incoming_dir)],
        "incoming_dir": str(settings.incoming_dir),
        "trained_through_batch": state.trained_through_batch,
        "checked_through_batch": state.checked_through_batch,
        "last_trained_at": state.last_trained_at,
        "cycles": state.cycles,
    }


def _next_cycle(last: dict[str, Any], settings: WorkerSettings) -> str | None:
    finished = last.get("finished_at")
    if not finished:
        return None
    return iso(datetime.fromisoformat(str(finished)) + settings.poll_interval)


def _next_retrain(state: WorkerState, settings: WorkerSettings) -> str | None:
    last = state.last_trained()
    if settings.retrain_every is None or last is None:
        return None
    return iso(last + settings.retrain_every)
