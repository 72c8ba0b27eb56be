"""Stage dispatch for the DVC entry points and the CLI, and the standalone chain."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from recops.config import validate_config
from recops.console import setup_logging
from recops.features.dataset import SplitData
from recops.paths import StagePaths

log = logging.getLogger(__name__)

Stage = Callable[[DictConfig, StagePaths], Any]
# module and function of each stage, imported only when that stage runs: each DVC stage is its
# own process, and the heavy libraries (mlflow, evidently, implicit, matplotlib) cost seconds
# to import, so ingest and features must not pay for what train, evaluate or drift use.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("recops.pipeline.prepare", "ingest_stage"),
    "features": ("recops.pipeline.prepare", "features_stage"),
    "train": ("recops.pipeline.train", "train_stage"),
    "evaluate": ("recops.pipeline.evaluate", "evaluate_stage"),
    "register": ("recops.pipeline.register", "register_stage"),
    "drift": ("recops.pipeline.drift", "drift_stage"),
}


def stage_function(name: str) -> Stage:
    """The function of stage `name`, importing its module now."""
    module, function = STAGES[name]
    stage: Stage = getattr(importlib.import_module(module), function)
    return stage


def run_stage(name: str, cfg: DictConfig) -> Any:
    """Run one named stage on the DVC-managed paths of `cfg.paths`."""
    setup_logging()
    validate_config(cfg)
    return stage_function(name)(cfg, StagePaths.from_config(cfg))


def run_chain(cfg: DictConfig) -> dict[str, Any]:
    """Everything a standalone `python -m pipelines.train ...` does, in cache folders.

    Ingest is idempotent (re-ingesting adds nothing); features are reused when a cache folder
    for the same data/features/split config exists.
    """
    setup_logging()
    validate_config(cfg)  # before anything is ingested or logged to MLflow
    paths = StagePaths.from_config(cfg).standalone(cfg)
    log.info(
        "standalone run: data=%s model=%s split=%s",
        cfg.data.name,
        cfg.model._target_.rsplit(".", 1)[-1],
        cfg.split._target_.rsplit(".", 1)[-1],
    )
    from recops.pipeline.evaluate import evaluate_stage
    from recops.pipeline.prepare import ingest_stage
    from recops.pipeline.register import register_stage
    from recops.pipeline.train import train_stage

    ingest = ingest_stage(cfg, paths)
    split = cached_split(cfg, paths, ingest)
    trained = train_stage(cfg, paths, split)
    evaluation = evaluate_stage(cfg, paths, split, trained.recommender)
    summary: dict[str, Any] = {"run_id": trained.run_id, "metrics": evaluation.flat()}
    registered = register_stage(cfg, paths, split, evaluation.metrics)
    summary["registry"] = registered.to_dict() if registered else {"skipped": True}
    return summary


def cached_split(cfg: DictConfig, paths: StagePaths, ingest: dict[str, Any]) -> SplitData:
    """The split in `paths.features_dir` if it was built from this snapshot, else a fresh one."""
    snapshot = ingest.get("snapshot", {}).get("content_hash")
    try:
        cached = SplitData.load(paths.features_dir)
    except Exception:  # absent or unreadable cache: rebuild
        cached = None
    if cached is not None and cached.stats.get("snapshot_hash") == snapshot:
        log.info("reusing features from %s", paths.features_dir)
        return cached
    from recops.pipeline.prepare import features_stage

    return features_stage(cfg, paths)
