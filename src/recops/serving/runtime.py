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
from pathlib import Path
from typing import Any

from recops.models.recommender import Recommender
from recops.serving import erasure, precompute
from recops.serving.config import ServeConfig
from recops.serving.engine import Engine, Slots
from recops.serving.loader import ModelLoader, ModelSource, PackagedSource, RegistrySource
from recops.serving.metrics import ServingMetrics, get_metrics
from recops.serving.refs import ModelRef
from recops.serving.served import ServedModel
from recops.serving.shared import WorkerBoard
from recops.serving.stats import RECOMMEND, ServingStats, summarize, version_summary

log = logging.getLogger(__name__)
RELOAD, CACHE_CLEAR = "reload", "cache_clear"
#: While nothing is loaded, retry this often (s) instead of waiting a whole poll interval.
NOT_READY_RETRY_S = 5.0

_CURRENT: ServingRuntime | None = None


def current_runtime() -> ServingRuntime | None:
    """The runtime of this process (set by `ServingRuntime.create`)."""
    return _CURRENT


class ServingRuntime:
    def __init__(
        self,
        cfg: ServeConfig,
        source: ModelSource,
        board: WorkerBoard | None = None,
        metrics: ServingMetrics | None = None,
        origin: str = "",
    ) -> None:
        self.cfg = cfg
        self.origin = origin
        self.board = board or WorkerBoard(None)
        self.metrics = metrics
        self.stats = ServingStats()
        self.loader = ModelLoader(cfg, source, self._build, self._on_event)
        self.engine = Engine(cfg, lambda: self.loader.slots, self.loader.not_ready_reason)
        self._seen = self.board.commands()  # commands issued before this worker started
        self._seen_lock = threading.Lock()
        self._published: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def create(
        cls,
        cfg: ServeConfig,
        packaged_dir: Callable[[], Path] | None = None,
        origin: str = "",
        start: bool = True,
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

            table = resolve_path(cfg.precompute.path) if cfg.precompute.enabled else None
            source = RegistrySource(cfg.model_name, precomputed=table)
        runtime = cls(cfg, source, WorkerBoard.for_server(cfg.state_dir), get_metrics(), origin)
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

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll and (not self.ready or self.loader.source.mode == "live"):
                self._safely(self.loader.refresh)
                wait = self.cfg.poll_interval_s
                next_poll = now + (wait if self.ready else min(wait, NOT_READY_RETRY_S))
            self._safely(self._sync)
            if self._stop.wait(self.cfg.sync_interval_s):
                break

    @staticmethod
    def _safely(func: Callable[[], Any]) -> None:
        try:
            func()
        except Exception:  # the sync thread must survive anything
            log.exception("serving background task failed")

    def _sync(self) -> None:
        """Act on commands other workers issued; publish this worker's snapshot."""
        commands = self.board.commands()
        if self._take(commands, RELOAD):
            self.loader.refresh(force=True)
        if self._take(commands, CACHE_CLEAR) or erasure.active().refresh():
            self.engine.clear_caches()
        state = (self.stats.version, id(self.loader.slots))
        if self.board.shared and state != self._published:
            self._published = state
            self.board.publish("stats", self.snapshot())

    def _take(self, commands: Mapping[str, int], name: str) -> bool:
        with self._seen_lock:
            if commands.get(name, 0) > self._seen.get(name, 0):
                self._seen[name] = commands[name]
                return True
            return False

    def _issue(self, name: str) -> None:
        number = self.board.bump(name)
        with self._seen_lock:  # this worker has done it already
            self._seen[name] = max(number, self._seen.get(name, 0))

    # -- endpoints -------------------------------------------------------------------------
    def observe(self, endpoint: str, status: int, seconds: float, note: Mapping[str, Any]) -> None:
        self.stats.record(endpoint, status, seconds, note)
        if endpoint == RECOMMEND and self.metrics is not None:
            cached = note.get("cached")
            self.metrics.observe_recommend(
                status, note.get("source"), seconds, None if cached is None else bool(cached)
            )

    def reload(self) -> dict[str, Any]:
        """Re-check the aliases now (this worker), and ask the other workers to do the same."""
        report = self.loader.refresh(force=True)
        self._issue(RELOAD)
        return {
            "mode": self.cfg.mode,
            **report,
            "serving": self.serving(),
            "other_workers_notified": self.board.shared,
        }

    def clear_cache(self) -> dict[str, Any]:
        cleared = self.engine.clear_caches()
        self._issue(CACHE_CLEAR)
        return {"cleared": cleared, "other_workers_notified": self.board.shared}

    def serving(self) -> dict[str, Any]:
        slots = self.loader.slots
        return {
            role: {"version": m.ref.version, "model_type": m.recommender.model_type}
            for role, m in slots.served()
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.stats.snapshot(),
            "pid": os.getpid(),
            "ready": self.ready,
            "serving": self.serving(),
            "caches": self.engine.cache_stats(),
        }

    def _snapshots(self) -> list[dict[str, Any]]:
        return self.board.collect("stats", self.snapshot())

    def stats_summary(self) -> dict[str, Any]:
        return summarize(self._snapshots())

    def cache_summary(self) -> dict[str, Any]:
        snaps = self._snapshots()
        workers = [{"pid": s.get("pid"), **s.get("caches", {})} for s in snaps]
        entries = [c for s in snaps for c in s.get("caches", {}).values()]
        hits = sum(int(c.get("hits", 0)) for c in entries)
        misses = sum(int(c.get("misses", 0)) for c in entries)
        cache = self.cfg.cache
        return {
            "config": {"size": cache.size, "ttl_s": cache.ttl_s, "warm_users": cache.warm_users},
            "size": sum(int(c.get("size", 0)) for c in entries),
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else None,
            "workers": workers,
        }

    def rollout_status(self) -> dict[str, Any]:
        snaps = self._snapshots()
        versions = version_summary(snaps)
        slots = self.loader.slots
        empty = {"requests": 0, "errors": 0, "client_errors": 0, "latency_ms": None}

        def describe(model: ServedModel | None, alias: str) -> dict[str, Any] | None:
            if model is None:
                return None
            counts = versions.get(str(model.ref.version), empty)
            return {
                "version": model.ref.version,
                "alias": alias,
                "model_type": model.recommender.model_type,
                "loaded_at": model.loaded_at,
                **{k: v for k, v in counts.items() if k != "roles"},
            }

        canary = self.cfg.canary
        return {
            "mode": self.cfg.mode,
            "canary": {
                "enabled": canary.enabled,
                "share": canary.share,
                "active": slots.challenger is not None,
                "challenger_alias": self.cfg.challenger_alias,
            },
            "champion": describe(slots.champion, self.cfg.alias),
            "challenger": describe(slots.challenger, self.cfg.challenger_alias),
            "versions": versions,
            "challenger_failures_answered_by_champion": sum(
                int(s.get("challenger_failures", 0)) for s in snaps
            ),
            "last_check": self.loader.last_check,
            "last_error": self.loader.last_error,
            "workers": len(snaps),
        }

    def model_info(self) -> dict[str, Any]:
        slots = self.loader.slots
        info: dict[str, Any] = {
            "ready": slots.champion is not None,
            "mode": self.cfg.mode,
            "registered_model": self.cfg.model_name,
            "alias": self.cfg.alias,
        }
        if slots.champion is not None:
            info.update(slots.champion.info())
            info["alias"] = self.cfg.alias
        info["challenger"] = (
            {**slots.challenger.info(), "alias": self.cfg.challenger_alias}
            if slots.challenger
            else None
        )
        info.update(
            last_check=self.loader.last_check,
            last_error=self.loader.last_error,
            recent_reloads=self.loader.history[-5:],
            config_origin=self.origin,
            worker_pid=os.getpid(),
        )
        return info
