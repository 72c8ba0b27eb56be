"""Read-only reports of a worker's runtime: what `/model_info`, `/stats`, `/cache/stats`,
`/rollout/status`, `/readyz` (details) and `/admin/reload/status` answer, and the snapshot a
worker publishes for the others."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from recops.serving.served import ServedModel
from recops.serving.stats import summarize, version_summary

if TYPE_CHECKING:
    from recops.serving.runtime import ServingRuntime


def serving(rt: ServingRuntime) -> dict[str, Any]:
    slots = rt.loader.slots
    return {
        role: {"version": m.ref.version, "model_type": m.recommender.model_type}
        for role, m in slots.served()
    }


def snapshot(rt: ServingRuntime) -> dict[str, Any]:
    return {
        **rt.stats.snapshot(),
        "pid": os.getpid(),
        "ready": rt.ready,
        "serving": serving(rt),
        "caches": rt.engine.cache_stats(),
    }


def _snapshots(rt: ServingRuntime) -> list[dict[str, Any]]:
    return rt.board.collect("stats", snapshot(rt))


def stats_summary(rt: ServingRuntime) -> dict[str, Any]:
    return summarize(_snapshots(rt))


def cache_summary(rt: ServingRuntime) -> dict[str, Any]:
    snaps = _snapshots(rt)
    workers = [{"pid": s.get("pid"), **s.get("caches", {})} for s in snaps]
    entries = [c for s in snaps for c in s.get("caches", {}).values()]
    hits = sum(int(c.get("hits", 0)) for c in entries)
    misses = sum(int(c.get("misses", 0)) for c in entries)
    cache = rt.cfg.cache
    return {
        "config": {"size": cache.size, "ttl_s": cache.ttl_s, "warm_users": cache.warm_users},
        "size": sum(int(c.get("size", 0)) for c in entries),
        "hits": hits,
        "misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "workers": workers,
    }


def rollout_status(rt: ServingRuntime) -> dict[str, Any]:
    snaps = _snapshots(rt)
    versions = version_summary(snaps)
    slots = rt.loader.slots
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

    canary = rt.cfg.canary
    return {
        "mode": rt.cfg.mode,
        "canary": {
            "enabled": canary.enabled,
            "share": canary.share,
            "active": slots.challenger is not None,
            "challenger_alias": rt.cfg.challenger_alias,
        },
        "champion": describe(slots.champion, rt.cfg.alias),
        "challenger": describe(slots.challenger, rt.cfg.challenger_alias),
        "versions": versions,
        "challenger_failures_answered_by_champion": sum(
            int(s.get("challenger_failures", 0)) for s in snaps
        ),
        "last_check": rt.loader.last_check,
        "last_error": rt.loader.last_error,
        "workers": len(snaps),
    }


def model_info(rt: ServingRuntime) -> dict[str, Any]:
    slots = rt.loader.slots
    info: dict[str, Any] = {
        "ready": slots.champion is not None,
        "mode": rt.cfg.mode,
        "registered_model": rt.cfg.model_name,
        "alias": rt.cfg.alias,
    }
    if slots.champion is not None:
        info.update(slots.champion.info())
        info["alias"] = rt.cfg.alias
    info["challenger"] = (
        {**slots.challenger.info(), "alias": rt.cfg.challenger_alias} if slots.challenger else None
    )
    info.update(
        degraded=rt.loader.degraded,
        last_check=rt.loader.last_check,
        last_error=rt.loader.last_error,
        recent_reloads=rt.loader.history[-5:],
        config_origin=rt.origin,
        worker_pid=os.getpid(),
    )
    return info


def readiness(rt: ServingRuntime) -> dict[str, Any]:
    """The `/readyz` body: why not ready, or what is served (and whether it is degraded)."""
    ready = rt.ready
    return {
        "ready": ready,
        "reason": None if ready else rt.loader.not_ready_reason(),
        "degraded": rt.loader.degraded,
        "serving": serving(rt),
        "last_error": rt.loader.last_error,
    }


def reload_status(rt: ServingRuntime) -> dict[str, Any]:
    """`GET /admin/reload/status`: the last reload request of this worker, and what it serves."""
    job = rt.reload_job
    return {
        "reload": job.describe() if job is not None else None,
        "serving": serving(rt),
        "degraded": rt.loader.degraded,
        "last_error": rt.loader.last_error,
    }
