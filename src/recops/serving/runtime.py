"""One worker's serving runtime: the loader, the engine, stats and metrics, and the background
thread that polls the registry and syncs with the other workers.

`bentos/service.py` creates one per worker process and delegates every endpoint to it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recops.errors import ConfigError
from recops.models.recommender import Recommender
from recops.serving import erasure, precompute, status
from recops.serving.config import RegistryClientConfig, ServeConfig
from recops.serving.engine import Engine, Slots
from recops.serving.lastgood import LastGoodStore
from recops.serving.launch import arbiter_pid
from recops.serving.loader import ModelLoader, ModelSource, PackagedSource, RegistrySource
from recops.serving.metrics import DriftExporter, ServingMetrics, get_metrics
from recops.serving.refs import ModelRef
from recops.serving.served import ServedModel
from recops.serving.shared import WorkerBoard
from recops.serving.stats import RECOMMEND, ServingStats

log = logging.getLogger(__name__)
#: How often a worker checks that its BentoML arbiter is still its parent (seconds).
PARENT_CHECK_S = 0.5
RELOAD, CACHE_CLEAR = "reload", "cache_clear"
#: While nothing is loaded, retry this often (s) instead of waiting a whole poll interval.
NOT_READY_RETRY_S = 5.0

_CURRENT: ServingRuntime | None = None


def bound_registry_calls(bounds: RegistryClientConfig) -> None:
    """MLflow's HTTP timeout and retries for this (service) process only: a dead registry is
    reported in seconds instead of after minutes of retries."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(bounds.timeout_s)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(bounds.max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(bounds.backoff_factor)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0"


def last_good_store(cfg: ServeConfig) -> LastGoodStore | None:
    """Where live mode keeps its last-good copy (None: disabled or no project to put it in)."""
    if cfg.mode != "live" or not cfg.last_good_dir:
        return None
    from recops.config import resolve_path

    try:
        return LastGoodStore(resolve_path(cfg.last_good_dir))
    except ConfigError as exc:
        log.warning("no last-good copy: %s", exc)
        return None


class ReloadJob:
    """One `/admin/reload` request, run in a thread; callers wait for it as long as they like."""

    def __init__(self, number: int, run: Callable[[], dict[str, Any]]) -> None:
        self.number = number
        self.started_at = status_now()
        self.finished_at: str | None = None
        self.result: dict[str, Any] | None = None
        self.done = threading.Event()
        self._run = run
        threading.Thread(target=self._work, name=f"recops-reload-{number}", daemon=True).start()

    def _work(self) -> None:
        try:
            self.result = self._run()
        except Exception as exc:  # reported, never raised into a request
            log.exception("reload %d failed", self.number)
            self.result = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.finished_at = status_now()
            self.done.set()

    def describe(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": "done" if self.done.is_set() else "running",
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
        }


def status_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_runtime() -> ServingRuntime | None:
    """The runtime of this process (set by `ServingRuntime.create`)."""
    return _CURRENT


def drift_summary_path(cfg: ServeConfig) -> Path | None:
    """`serve.drift_summary` (relative: to the project root, or the working directory outside
    a project, e.g. in a container); None when unset."""
    from recops.config import resolve_path
    from recops.errors import ConfigError

    if not cfg.drift_summary:
        return None
    try:
        return resolve_path(cfg.drift_summary)
    except ConfigError:
        return Path(cfg.drift_summary).resolve()


class ServingRuntime:
    def __init__(
        self,
        cfg: ServeConfig,
        source: ModelSource,
        board: WorkerBoard | None = None,
        metrics: ServingMetrics | None = None,
        origin: str = "",
        last_good: LastGoodStore | None = None,
        exit_with_parent: bool = False,
    ) -> None:
        self.cfg = cfg
        self.origin = origin
        self.board = board or WorkerBoard(None)
        self.metrics = metrics
        self.stats = ServingStats()
        self.loader = ModelLoader(cfg, source, self._build, self._on_event, last_good)
        self.engine = Engine(cfg, lambda: self.loader.slots, self.loader.not_ready_reason)
        self._seen = self.board.commands()  # commands issued before this worker started
        self._seen_lock = threading.Lock()
        self._published: tuple[int, int] | None = None
        self.drift = DriftExporter(metrics, drift_summary_path(cfg)) if metrics else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reload_job: ReloadJob | None = None
        self._job_lock = threading.Lock()
        #: The parent process when the runtime started (a BentoML worker's arbiter); when it is
        #: gone, the worker exits instead of serving on as an orphan.
        self.parent_pid = arbiter_pid() if exit_with_parent else None

    @classmethod
    def create(
        cls,
        cfg: ServeConfig,
        packaged_dir: Callable[[], Path] | None = None,
        origin: str = "",
        start: bool = True,
        exit_with_parent: bool = False,
    ) -> ServingRuntime:
        """The runtime for `cfg.mode`, registered as this process's current runtime."""
        global _CURRENT
        source: ModelSource
        if cfg.mode == "packaged":
            if packaged_dir is None:
                raise ValueError("packaged mode needs the folder of the packaged model")
            source = PackagedSource(packaged_dir)
        else:
            from recops.config import resolve_path

            bound_registry_calls(cfg.registry)
            table = resolve_path(cfg.precompute.path) if cfg.precompute.enabled else None
            source = RegistrySource(cfg.model_name, precomputed=table)
        board = WorkerBoard.for_server(cfg.state_dir)
        runtime = cls(
            cfg, source, board, get_metrics(), origin, last_good_store(cfg), exit_with_parent
        )
        _CURRENT = runtime
        if start:
            runtime.start()
        return runtime

    # -- model lifecycle -------------------------------------------------------------------
    def _build(self, recommender: Recommender, ref: ModelRef, table: Path | None) -> ServedModel:
        """Everything a request needs, built before the swap (off the request path)."""
        pre = None
        if table is not None and self.cfg.precompute.enabled:
            try:
                pre = precompute.load(table, recommender, ref.model_name, ref.version, ref.run_id)
            except (ValueError, OSError) as exc:
                log.info("not using precomputed table %s: %s", table, exc)
        model = ServedModel(ref, recommender, self.cfg, pre)
        warmed = model.warm()
        log.info("built %s: %d users, %d cached answers", ref.key, model.n_users, warmed)
        return model

    def _on_event(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "reload":
            self.stats.record_reload(str(data["result"]))
            if self.metrics is not None:
                self.metrics.reloads.labels(result=str(data["result"])).inc()
        elif kind == "swap" and self.metrics is not None:
            new: Slots = data["new"]
            for role, model in (("champion", new.champion), ("challenger", new.challenger)):
                if model is None:
                    self.metrics.served(role, self.cfg.model_name, None, "")
                else:
                    self.metrics.served(
                        role, model.ref.model_name, model.ref.version, model.recommender.model_type
                    )

    @property
    def ready(self) -> bool:
        return self.loader.slots.champion is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recops-model-sync", daemon=True)
            self._thread.start()
        if self.parent_pid is not None:
            # its own thread: a long model load or registry call in the sync loop must not
            # keep an orphaned worker serving
            threading.Thread(
                target=self._watch_parent, name="recops-parent-watch", daemon=True
            ).start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self, force: bool = False) -> dict[str, Any]:
        """`loader.refresh`, then the degraded gauge."""
        report = self.loader.refresh(force=force)
        if self.metrics is not None:
            self.metrics.degraded.set(1 if self.loader.degraded else 0)
        return report

    def _watch_parent(self) -> None:
        while not self._stop.wait(PARENT_CHECK_S):
            self._exit_if_orphaned()

    def _run(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll and (not self.ready or self.loader.source.mode == "live"):
                self._safely(self.refresh)
                wait = self.cfg.poll_interval_s
                next_poll = now + (wait if self.ready else min(wait, NOT_READY_RETRY_S))
            self._safely(self._sync)
            if self._stop.wait(self.cfg.sync_interval_s):
                break

    def _exit_if_orphaned(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.error(
                "the BentoML arbiter (pid %d) is gone: this worker (pid %d) exits",
                self.parent_pid,
                os.getpid(),
            )
            logging.shutdown()
            os._exit(0)

    @staticmethod
    def _safely(func: Callable[[], Any]) -> None:
        try:
            func()
        except Exception:  # the sync thread must survive anything
            log.exception("serving background task failed")

    def _sync(self) -> None:
        """Act on commands other workers issued; publish this worker's snapshot."""
        if self.drift is not None:
            self.drift.refresh()
        commands = self.board.commands()
        if self._take(commands, RELOAD):
            self.refresh(force=True)
        if self._take(commands, CACHE_CLEAR) or erasure.active().refresh():
            self.engine.clear_caches()
        state = (self.stats.version, id(self.loader.slots))
        if self.board.shared and state != self._published:
            self._published = state
            self.board.publish("stats", status.snapshot(self))

    def _take(self, commands: Mapping[str, int], name: str) -> bool:
        with self._seen_lock:
            if commands.get(name, 0) > self._seen.get(name, 0):
                self._seen[name] = commands[name]
                return True
            return False

    def _issue(self, name: str) -> None:
        with self._seen_lock:  # this worker does it itself: its own sync must not repeat it
            number = self.board.bump(name)
            self._seen[name] = max(number, self._seen.get(name, 0))

    # -- endpoints -------------------------------------------------------------------------
    def observe(self, endpoint: str, status: int, seconds: float, note: Mapping[str, Any]) -> None:
        self.stats.record(endpoint, status, seconds, note)
        if endpoint == RECOMMEND and self.metrics is not None:
            cached = note.get("cached")
            version = note.get("version")
            self.metrics.observe_recommend(
                status,
                note.get("source"),
                seconds,
                None if cached is None else bool(cached),
                note.get("role"),
                None if version is None else str(version),
            )

    def reload(self) -> dict[str, Any]:
        """Re-check the aliases now (this worker), and ask the other workers to do the same."""
        self._issue(RELOAD)
        report = self.refresh(force=True)
        return {
            "mode": self.cfg.mode,
            **report,
            "serving": status.serving(self),
            "degraded": self.loader.degraded,
            "other_workers_notified": self.board.shared,
        }

    def request_reload(self) -> ReloadJob:
        """A reload running in the background (the one already running, if any)."""
        with self._job_lock:
            job = self.reload_job
            if job is None or job.done.is_set():
                number = job.number + 1 if job is not None else 1
                job = self.reload_job = ReloadJob(number, self.reload)
            return job

    def readiness(self) -> dict[str, Any]:
        return status.readiness(self)

    def clear_cache(self) -> dict[str, Any]:
        cleared = self.engine.clear_caches()
        self._issue(CACHE_CLEAR)
        return {"cleared": cleared, "other_workers_notified": self.board.shared}
