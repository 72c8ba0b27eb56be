"""A drift check from config: `recops drift` (windows over the event store), `run_drift` (used
by the DVC stage in `recops.pipeline.drift`), and the pieces the worker shares."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import resolve_path
from recops.console import step
from recops.data.settings import FileMapping
from recops.monitoring.check import Champion, CheckContext, run_check
from recops.monitoring.frames import SnapshotBase, StoreBase, load_side
from recops.monitoring.settings import DriftSettings
from recops.paths import StagePaths, dataset_key
from recops.registry.settings import RegistrySettings
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
    drift = DriftSettings.from_config(cfg)
    ref, cur = reference or drift.reference, current or drift.current
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
    drift = DriftSettings.from_config(cfg)
    mapping = file_mapping(cfg)
    data = base.db_path if isinstance(base, StoreBase) else Path(base.label)
    with step(f"reading the windows {reference} and {current} from {data}"):
        ref_side = load_side(reference, base, mapping)
        cur_side = load_side(current, base, mapping)
    champion = None
    if drift.model.enabled:
        with step("loading the champion"):
            champion = load_champion(cfg, paths.root)
    context = check_context(cfg, drift, paths, source, data)
    return run_check(ref_side, cur_side, drift, context, champion)


def check_context(
    cfg: DictConfig,
    drift: DriftSettings,
    paths: StagePaths,
    source: str,
    data: Path | None = None,
) -> CheckContext:
    """How a check is labelled and where it goes; `data`: where its events are read from
    (default: the event store)."""
    return CheckContext(
        dataset=dataset_key(cfg.data),
        source=source,
        output_dir=resolve_path(drift.output_dir, paths.root),
        data=paths.duckdb if data is None else data,
        experiment=drift.experiment or None,
        log_html=drift.log_html,
        root=paths.root,
    )


def file_mapping(cfg: DictConfig) -> dict[str, Any]:
    """How an events file is read: `worker.file`, its columns defaulting to `data.columns`
    (for `data=events` configs) or the canonical column names."""
    file_cfg = asdict(FileMapping.from_config(cfg))
    columns = file_cfg["columns"] or cfg.data.get("columns") or CANONICAL_COLUMNS
    file_cfg["columns"] = dict(columns)
    return file_cfg


def load_champion(cfg: DictConfig, root: Path | None = None) -> Champion | None:
    """The registry's `champion` (None when there is none or it cannot be loaded: the data
    features are still worth checking, and the worker then trains a new one)."""
    configure_tracking(root)
    reg = RegistrySettings.from_config(cfg, root)
    name, alias = reg.model_name, reg.champion_alias
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
