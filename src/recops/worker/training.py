"""A worker retrain: snapshot -> split -> full fit or fold-in -> evaluation -> registry.

Nothing reaches the registry before training and evaluation both succeeded; if registering
itself fails half-way, the versions made from the run are deleted again, so a failed cycle
leaves no partial registry entry (only an MLflow training run marked FAILED).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from recops.data.store import EventStore
from recops.errors import RegistryError
from recops.features.dataset import SplitData
from recops.models.factors import FactorModel
from recops.models.recommender import Recommender
from recops.monitoring.check import Champion
from recops.paths import StagePaths, read_json
from recops.pipeline.evaluate import evaluate_stage
from recops.pipeline.prepare import features_stage
from recops.pipeline.register import register_stage
from recops.pipeline.train import build_recommender, save_and_log, train_stage
from recops.registry.settings import RegistrySettings
from recops.tracking.store import configure_tracking

log = logging.getLogger(__name__)
MODE_TAG = "training_mode"
FOLDED_FROM_TAG = "recops.folded_from"


@dataclass
class Trained:
    mode: str  # full | fold_in
    run_id: str
    split: SplitData
    metrics: dict[str, float]


@dataclass
class Registered:
    version: str
    promoted: bool
    alias: str | None
    reason: str


def prepare_split(cfg: DictConfig, paths: StagePaths, dataset: str) -> SplitData:
    """Export the dataset's current events to the worker's snapshot and build the split."""
    with EventStore(paths.duckdb) as store:
        store.export_snapshot(dataset, paths.snapshot_dir)
    return features_stage(cfg, paths)


def can_fold_in(champion: Champion | None) -> bool:
    """The champion's model can take new users into its item factors (`supports_fold_in`)."""
    return champion is not None and champion.recommender.model.supports_fold_in


def train_full(cfg: DictConfig, paths: StagePaths, split: SplitData) -> Trained:
    outcome = train_stage(cfg, paths, split)
    return _evaluated(cfg, paths, split, outcome.run_id, outcome.recommender, "full", {})


def train_fold_in(
    cfg: DictConfig, paths: StagePaths, split: SplitData, champion: Champion
) -> Trained:
    """The champion's item factors, with this split's users (and new items) folded in."""
    base = champion.recommender.model
    if not (base.supports_fold_in and isinstance(base, FactorModel)) or base.item_factors is None:
        raise TypeError(f"{champion.recommender.model_type} does not support fold-in")
    model = type(base)(**base.get_params())
    index = champion.recommender.items.lookup(split.train.items.external_ids)
    known = index >= 0
    factors = np.zeros((split.train.n_items, base.item_factors.shape[1]), np.float32)
    factors[known] = base.item_factors[index[known]]
    started = time.perf_counter()
    model.fold_in(split.train, factors, known)
    fit_time = time.perf_counter() - started
    log.info(
        "folded %d users and %d new items into v%s's factors in %.2f s",
        split.train.n_users, int((~known).sum()), champion.version, fit_time,
    )  # fmt: skip
    recommender = build_recommender(model, split.train, cfg, paths)
    logged_cfg = cfg.copy()  # log the hyperparameters really used: the champion's
    with open_dict(logged_cfg):
        logged_cfg.model = OmegaConf.create(model.get_config())
    run_id = save_and_log(logged_cfg, paths, recommender, split.stats, fit_time).run_id
    extra = {FOLDED_FROM_TAG: champion.version}
    return _evaluated(cfg, paths, split, run_id, recommender, "fold_in", extra)


def _evaluated(
    cfg: DictConfig,
    paths: StagePaths,
    split: SplitData,
    run_id: str,
    recommender: Recommender,
    mode: str,
    tags: dict[str, str],
) -> Trained:
    client = MlflowClient()
    for key, value in {MODE_TAG: mode, **tags}.items():
        client.set_tag(run_id, key, value)
    try:
        result = evaluate_stage(cfg, paths, split, recommender)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return Trained(mode, run_id, split, result.metrics)


def register(cfg: DictConfig, paths: StagePaths, trained: Trained, promote_to: str) -> Registered:
    """Register the run's model and promote it through the gates to `promote_to`."""
    configure_tracking(paths.root)
    reg = RegistrySettings.from_config(cfg, paths.root)
    client, name = MlflowClient(), reg.model_name
    try:
        if promote_to == "challenger":
            registered = _to_challenger(cfg, paths, trained)
        else:
            outcome = register_stage(cfg, paths, trained.split, trained.metrics)
            if outcome is None:
                raise RuntimeError("register=false: the worker has nothing to promote")
            alias = reg.champion_alias if outcome.promoted else None
            registered = Registered(outcome.version, outcome.promoted, alias, outcome.reason)
    except BaseException:
        discard_versions(client, name, trained.run_id)
        raise
    client.set_model_version_tag(name, registered.version, MODE_TAG, trained.mode)
    return registered


def _to_challenger(cfg: DictConfig, paths: StagePaths, trained: Trained) -> Registered:
    """Candidate, then the registry lifecycle's gated move to `challenger`."""
    from recops.registry.lifecycle import Registry  # imported late: only this path needs it

    registry = Registry(cfg, MlflowClient(), paths.root)
    number, _ = registry.register_run(trained.run_id, _model_uri(paths), trained.metrics)
    try:
        moved = registry.promote(number, to="challenger")
    except RegistryError as exc:
        return Registered(number, False, None, str(exc))
    return Registered(number, True, registry.settings.challenger_alias, moved.record.reason)


def _model_uri(paths: StagePaths) -> str:
    return str(read_json(paths.run_file)["model_uri"])


def discard_versions(client: MlflowClient, name: str, run_id: str) -> list[str]:
    """Delete the registered versions made from `run_id` (a registration that failed)."""
    removed: list[str] = []
    try:
        versions: list[Any] = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except Exception:  # no registered model yet: nothing to undo
        return removed
    for version in versions:
        client.delete_model_version(name, str(version.version))
        removed.append(str(version.version))
    if removed:
        log.warning("registration failed: removed %s v%s", name, ", v".join(removed))
    return removed
