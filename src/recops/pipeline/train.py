"""Stage 3: fit the configured model, save it, and log the MLflow run with its pyfunc model."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recops.config import flatten
from recops.console import step
from recops.features.dataset import Dataset, SplitData
from recops.models.base import RecModel
from recops.models.recommender import ACTIVITY_COLUMNS, RECENT_DAYS, Recommender
from recops.pipeline.context import StagePaths, write_json
from recops.registry.holdout import FEATURES_DIR_TAG, FEATURES_HASH_TAG, features_hash
from recops.tracking.pyfunc import log_pyfunc
from recops.tracking.store import configure_tracking, ensure_experiment, git_commit

log = logging.getLogger(__name__)
#: Packages the pyfunc model needs at load time, pinned to the versions it was trained with.
RUNTIME_PACKAGES = ("mlflow", "numpy", "pandas", "scipy", "pyarrow", "implicit", "omegaconf")


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    model_uri: str
    model_type: str
    fit_time_s: float
    recommender: Recommender

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "model_type": self.model_type,
            "fit_time_s": self.fit_time_s,
        }


def build_model(cfg: DictConfig) -> RecModel:
    """The model described by `cfg.model` (`_target_` + hyperparameters)."""
    model = instantiate(cfg.model, _convert_="all")
    if not isinstance(model, RecModel):
        raise TypeError(f"model._target_ {cfg.model._target_} did not build a RecModel")
    return model


def fit_model(model: RecModel, split: SplitData) -> float:
    """Fit on the training part of `split`; returns wall seconds."""
    start = time.perf_counter()
    with step(f"training {model.model_type} on {split.train.user_items.nnz:,} interactions"):
        model.fit(split.train)
    return time.perf_counter() - start


def train_stage(cfg: DictConfig, paths: StagePaths, split: SplitData | None = None) -> TrainOutcome:
    model = build_model(cfg)
    if split is None:
        split = SplitData.load(paths.features_dir, with_events=model.requires_events)
    fit_time = fit_model(model, split)
    recommender = Recommender.from_training(
        model, split.train, training_events(split, paths), recent_days(cfg)
    )
    if paths.model_dir.exists():
        shutil.rmtree(paths.model_dir)
    recommender.save(paths.model_dir)
    run_id, model_uri = log_training_run(cfg, paths, recommender, split, fit_time)
    outcome = TrainOutcome(run_id, model_uri, model.model_type, fit_time, recommender)
    write_json(
        paths.run_file, {**outcome.to_dict(), "snapshot_hash": split.stats.get("snapshot_hash")}
    )
    log.info("trained %s in %.1f s; MLflow run %s", model.model_type, fit_time, run_id)
    return outcome


def training_events(split: SplitData, paths: StagePaths) -> pd.DataFrame | None:
    """The training events for the items' recent activity (served popularity, recency): the
    split's, else just the needed columns from the features folder."""
    if split.train.events is not None:
        return split.train.events
    return Dataset.load_events(paths.features_dir, ACTIVITY_COLUMNS)


def recent_days(cfg: DictConfig) -> float:
    """Window of the recent popularity stored with the model (`serve.fallback.recent_days`)."""
    return float(OmegaConf.select(cfg, "serve.fallback.recent_days", default=RECENT_DAYS))


def run_tags(
    cfg: DictConfig, split: SplitData, model_type: str, features_dir: Path | None = None
) -> dict[str, str]:
    """Run tags; the features hash/folder let the registry find this run's holdout again."""
    commit = git_commit()
    tags = {
        "model_type": model_type,
        "dataset": str(split.stats.get("dataset") or cfg.data.name),
        "data_snapshot": str(split.stats.get("snapshot_hash")),
        "split": str(split.stats.get("split", {}).get("type")),
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        FEATURES_HASH_TAG: features_hash(split.stats),
    }
    if features_dir is not None:
        tags[FEATURES_DIR_TAG] = str(features_dir)
    return tags


def log_training_run(
    cfg: DictConfig,
    paths: StagePaths,
    recommender: Recommender,
    split: SplitData,
    fit_time: float,
) -> tuple[str, str]:
    """One MLflow run: flattened config as params, tags, split stats, the pyfunc model."""
    configure_tracking(paths.root)
    experiment_id = ensure_experiment(str(cfg.experiment), paths.root)
    snapshot = str(split.stats.get("snapshot_hash") or "")[:8]
    with (
        step("logging the run and model to MLflow"),
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{recommender.model_type}-{snapshot}"
        ) as run,
    ):
        mlflow.log_params(flatten(cfg))
        mlflow.set_tags(run_tags(cfg, split, recommender.model_type, paths.features_dir))
        mlflow.log_metric("fit_time_s", fit_time)
        mlflow.log_dict(split.stats, "features/split_stats.json")
        info = log_pyfunc(recommender, paths.model_dir, pip_requirements())
    return run.info.run_id, str(info.model_uri)


def pip_requirements() -> list[str]:
    reqs = []
    for name in RUNTIME_PACKAGES:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs
