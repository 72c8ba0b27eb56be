"""Stage 3: fit the configured model, save it, and log the MLflow run with its pyfunc model."""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
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
from recops.faults import pause_point
from recops.features.activity import ACTIVITY_COLUMNS, RECENT_DAYS
from recops.features.dataset import Dataset, SplitData
from recops.models.base import RecModel
from recops.models.recommender import Recommender
from recops.paths import StagePaths, write_json
from recops.registry.holdout import FEATURES_DIR_TAG, FEATURES_HASH_TAG, features_hash
from recops.tracking.pyfunc import log_pyfunc
from recops.tracking.runs import owner_tags
from recops.tracking.store import (
    DataSnapshot,
    configure_tracking,
    ensure_experiment,
    git_commit,
    log_dataset_input,
)

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


def fit_model(model: RecModel, train: Dataset) -> float:
    """Fit on `train`; returns wall seconds."""
    start = time.perf_counter()
    with step(f"training {model.model_type} on {train.user_items.nnz:,} interactions"):
        model.fit(train)
    return time.perf_counter() - start


def train_stage(cfg: DictConfig, paths: StagePaths, split: SplitData | None = None) -> TrainOutcome:
    """Fit, save and log the configured model. Without `split` only the training part of the
    features is read (the test pairs are the evaluate stage's business)."""
    model = build_model(cfg)
    train, stats = (
        (split.train, split.stats)
        if split is not None
        else (
            Dataset.load(paths.features_dir, with_events=model.requires_events),
            SplitData.load_stats(paths.features_dir),
        )
    )
    with ThreadPoolExecutor(1, thread_name_prefix="mlflow-setup") as pool:
        # The tracking store's start-up (imports, schema check) overlaps the fit.
        experiment = pool.submit(prepare_tracking, cfg, paths)
        fit_time = fit_model(model, train)
        recommender = build_recommender(model, train, cfg, paths)
        outcome = save_and_log(cfg, paths, recommender, stats, fit_time, experiment.result())
    log.info("trained %s in %.1f s; MLflow run %s", model.model_type, fit_time, outcome.run_id)
    return outcome


def save_and_log(
    cfg: DictConfig,
    paths: StagePaths,
    recommender: Recommender,
    stats: dict[str, Any],
    fit_time: float,
    experiment_id: str | None = None,
) -> TrainOutcome:
    """Save the recommender as `paths.model_dir` (replacing it), log the MLflow run and write
    the run file the later stages read."""
    if paths.model_dir.exists():
        shutil.rmtree(paths.model_dir)
    recommender.save(paths.model_dir)
    run_id, model_uri = log_training_run(cfg, paths, recommender, stats, fit_time, experiment_id)
    outcome = TrainOutcome(run_id, model_uri, recommender.model_type, fit_time, recommender)
    write_json(paths.run_file, {**outcome.to_dict(), "snapshot_hash": stats.get("snapshot_hash")})
    return outcome


def build_recommender(
    model: RecModel, train: Dataset, cfg: DictConfig, paths: StagePaths
) -> Recommender:
    """The fitted model with its id maps and item data. The items' recent activity (served
    popularity, recency) comes with the features; a features folder written before they
    carried it gets it from its training events (`features.recent_days` window)."""
    events = None if train.activity is not None else training_events(train, paths)
    return Recommender.from_training(model, train, events, recent_days(cfg))


def training_events(train: Dataset, paths: StagePaths) -> pd.DataFrame | None:
    """`train`'s events, else just the columns the item activity needs from the folder."""
    if train.events is not None:
        return train.events
    return Dataset.load_events(paths.features_dir, ACTIVITY_COLUMNS)


def recent_days(cfg: DictConfig) -> float:
    """Window of the items' recent popularity (`features.recent_days`)."""
    return float(OmegaConf.select(cfg, "features.recent_days", default=RECENT_DAYS))


def run_tags(
    cfg: DictConfig, stats: dict[str, Any], model_type: str, features_dir: Path | None = None
) -> dict[str, str]:
    """Run tags from the split's `stats`; the features hash/folder let the registry find this
    run's holdout again."""
    commit = git_commit()
    tags = {
        "model_type": model_type,
        "dataset": str(stats.get("dataset") or cfg.data.name),
        "data_snapshot": str(stats.get("snapshot_hash")),
        "split": str(stats.get("split", {}).get("type")),
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        FEATURES_HASH_TAG: features_hash(stats),
    }
    if features_dir is not None:
        tags[FEATURES_DIR_TAG] = str(features_dir)
    return tags


def data_snapshot(cfg: DictConfig, stats: dict[str, Any], snapshot_dir: Path) -> DataSnapshot:
    """The snapshot the split `stats` were built from, as a run's MLflow dataset input."""
    return DataSnapshot(
        name=str(stats.get("dataset") or cfg.data.name),
        digest=str(stats.get("snapshot_hash") or ""),
        source=str(snapshot_dir),
    )


def prepare_tracking(cfg: DictConfig, paths: StagePaths) -> str:
    """Open the tracking store and return the run's experiment id.

    Also warms MLflow's one-off scan of the installed packages (it checks the logged pip
    requirements against it): together ~2 s per process that can run during the fit.
    """
    configure_tracking(paths.root)
    experiment_id = ensure_experiment(str(cfg.experiment), paths.root)
    warm_requirement_checks()
    return experiment_id


def warm_requirement_checks() -> None:
    """Build MLflow's package-to-module map now (private API, so only if it exists)."""
    try:
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map
    except ImportError:
        return
    _init_packages_to_modules_map()


def log_training_run(
    cfg: DictConfig,
    paths: StagePaths,
    recommender: Recommender,
    stats: dict[str, Any],
    fit_time: float,
    experiment_id: str | None = None,
) -> tuple[str, str]:
    """One MLflow run: flattened config as params, tags, split stats, the pyfunc model."""
    if experiment_id is None:
        experiment_id = prepare_tracking(cfg, paths)
    snapshot = str(stats.get("snapshot_hash") or "")[:8]
    with (
        step("logging the run and model to MLflow"),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{recommender.model_type}-{snapshot}",
            tags=owner_tags(),
        ) as run,
    ):
        pause_point("run-logging")
        mlflow.log_params(flatten(cfg))
        mlflow.set_tags(run_tags(cfg, stats, recommender.model_type, paths.features_dir))
        mlflow.log_metric("fit_time_s", fit_time)
        mlflow.log_dict(stats, "features/split_stats.json")
        log_dataset_input(data_snapshot(cfg, stats, paths.snapshot_dir))
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
