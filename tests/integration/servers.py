"""Start/stop helpers for tests that run real servers (bentoml serve, mlflow ui) on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started with `start_new_session=True`: its process group, then any child
    left (circus starts each BentoML worker in a process group of its own)."""
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:
        worker.kill()


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a BentoML server under test: the project's venv first on PATH, its own
    BentoML home in `tmp`, no inherited serve overrides or metrics dirs."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in ("MLFLOW_REGISTRY_URI", "RECOPS_SERVE_OVERRIDES", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(key, None)
    env.update(
        BENTOML_HOME=str(tmp / "bentoml_home"),
        BENTOML_DO_NOT_TRACK="True",
        OPENBLAS_NUM_THREADS="1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def start_bentoml(
    args: list[str], cwd: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`bentoml serve <args>` on a free loopback port in its own process group (stop it with
    `stop`); output goes to `log`. Returns the process and its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", *args, "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}"


def ready(url: str, proc: subprocess.Popen[bytes], log: Path, workers: int | None = None) -> bool:
    """True once `bentoml serve` at `url` answers /readyz (and, given `workers`, that many
    workers have loaded their model: a request may reach any of them). Fails at once, with the
    log's tail, if the server exited."""
    assert proc.poll() is None, f"server exited:\n{log.read_text()[-3000:]}"
    try:
        if (
            workers is not None
            and httpx.get(f"{url}/stats", timeout=5).json().get("workers_ready") != workers
        ):
            return False
        return httpx.get(f"{url}/readyz", timeout=5).is_success
    except (httpx.TransportError, ValueError):
        return False


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Poll `check` until it is true or `timeout` seconds passed; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return bool(check())


@contextmanager
def bentoml_service(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    workers: int | None = None,
    timeout: float = 180,  # a loaded machine starts BentoML slowly
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`bentoml serve <args>` (see `start_bentoml`) ready to answer; stopped, with its whole
    process group, on exit. Yields the process and its base URL."""
    proc, url = start_bentoml(args, cwd, env, log)
    try:
        if not wait_until(lambda: ready(url, proc, log, workers), timeout, every=0.3):
            pytest.fail(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")
        yield proc, url
    finally:
        if proc.poll() is None:  # a test may have stopped it itself
            stop(proc)
