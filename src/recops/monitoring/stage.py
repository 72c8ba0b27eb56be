"""A drift check from config: `recops drift` (windows over the event store), `run_drift` (used
by the DVC stage in `recops.pipeline.drift`), and the pieces the worker shares."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import resolve_path, to_dict
from recops.monitoring.check import Champion, CheckContext, run_check
from recops.monitoring.frames import SnapshotBase, StoreBase, load_side
from recops.paths import StagePaths, dataset_key
from recops.tracking.model_files import load_registered_recommender
from recops.tracking.store import configure_tracking

log = logging.getLogger(__name__)
CANONICAL_COLUMNS = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "event_type": "event_type",
}


def drift_cli(cfg: DictConfig, reference: str | None, current: str | None) -> dict[str, Any]:
    """`recops drift`: windows over the event store (which may hold more than the snapshot)."""
    paths = StagePaths.from_config(cfg)
    base = StoreBase(paths.duckdb, dataset_key(cfg.data))
    ref = reference or str(cfg.drift.reference)
    cur = current or str(cfg.drift.current)
    return run_drift(cfg, paths, base, ref, cur, "cli")


def run_drift(
    cfg: DictConfig,
    paths: StagePaths,
    base: StoreBase | SnapshotBase,
    reference: str,
    current: str,
    source: str,
) -> dict[str, Any]:
    """`reference` vs `current` (window specs or paths over `base`), labelled `source`."""
    mapping = file_mapping(cfg)
    ref_side, cur_side = load_side(reference, base, mapping), load_side(current, base, mapping)
    model_enabled = bool(cfg.drift.get("model", {}).get("enabled", True))
    champion = load_champion(cfg, paths.root) if model_enabled else None
    context = check_context(cfg, paths, source)
    return run_check(ref_side, cur_side, to_dict(cfg.drift), context, champion)


def check_context(cfg: DictConfig, paths: StagePaths, source: str) -> CheckContext:
    experiment = cfg.drift.get("experiment")
    return CheckContext(
        dataset=dataset_key(cfg.data),
        source=source,
        output_dir=resolve_path(str(cfg.drift.output_dir), paths.root),
        experiment=str(experiment) if experiment else None,
        log_html=bool(cfg.drift.get("log_html", True)),
        root=paths.root,
    )


def file_mapping(cfg: DictConfig) -> dict[str, Any]:
    """How an events file is read: `worker.file`, its columns defaulting to `data.columns`
    (for `data=events` configs) or the canonical column names."""
    file_cfg = to_dict(cfg.worker.file)
    columns = file_cfg.get("columns") or cfg.data.get("columns") or CANONICAL_COLUMNS
    file_cfg["columns"] = dict(columns)
    return file_cfg


def load_champion(cfg: DictConfig, root: Path | None = None) -> Champion | None:
    """The registry's `champion` (None when there is none or it cannot be loaded: the data
    features are still worth checking, and the worker then trains a new one)."""
    configure_tracking(root)
    name, alias = str(cfg.registry.model_name), str(cfg.registry.champion_alias)
    client = MlflowClient()
    try:
        version = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        log.info("no %s@%s: the model-output features are skipped", name, alias)
        return None
    try:
        return Champion(name, version, load_registered_recommender(client, name, version))
    except Exception as exc:  # a broken champion must not stop a data check
        log.warning("cannot load %s v%s (%s): model-output features skipped", name, version, exc)
        return None
