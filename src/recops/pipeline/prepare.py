"""Stages 1–2: ingest the configured source into the store, then build features and split."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from recops.config import to_dict
from recops.console import step
from recops.data.ingest import IngestSettings, run_ingest
from recops.errors import DataSourceError
from recops.features.activity import RECENT_DAYS
from recops.features.build import build_split, require_test_pairs
from recops.features.dataset import SplitData
from recops.features.events import CodedEvents
from recops.pipeline.context import StagePaths, dataset_key, read_json

log = logging.getLogger(__name__)
SNAPSHOT_EVENTS = "events.parquet"
SNAPSHOT_ITEMS = "items.parquet"
SNAPSHOT_MANIFEST = "manifest.json"


def ingest_stage(cfg: DictConfig, paths: StagePaths) -> dict[str, Any]:
    """Load the source, validate, append to DuckDB and export the parquet snapshot."""
    ingest_cfg = cfg.data.get("ingest")
    settings = IngestSettings.from_config(to_dict(ingest_cfg) if ingest_cfg else None)
    source = instantiate(cfg.data.source, _convert_="all")
    report = run_ingest(
        source, dataset_key(cfg.data), paths.duckdb, paths.snapshot_dir, settings=settings
    )
    return report.to_dict()


def snapshot_manifest(snapshot_dir: Path) -> dict[str, Any]:
    path = snapshot_dir / SNAPSHOT_MANIFEST
    if not path.exists():
        raise DataSourceError(f"no snapshot at {snapshot_dir}: run the ingest stage first")
    return read_json(path)


def features_stage(cfg: DictConfig, paths: StagePaths) -> SplitData:
    """Weighted matrix, item features and the configured split, saved to `features_dir`."""
    manifest = snapshot_manifest(paths.snapshot_dir)
    splitter = instantiate(cfg.split)
    features = to_dict(cfg.features)
    weights = features["event_weights"]
    default_weight = float(features.get("default_weight", 1.0))
    with step("reading snapshot"):
        events = CodedEvents.read_parquet(
            paths.snapshot_dir / SNAPSHOT_EVENTS, weights, default_weight
        )
        items_path = paths.snapshot_dir / SNAPSHOT_ITEMS
        items = pd.read_parquet(items_path) if items_path.exists() else None
    split = build_split(
        events,
        items,
        splitter,
        weights=weights,
        default_weight=default_weight,
        item_feature_cfg=features.get("item_features"),
        recent_days=float(features.get("recent_days", RECENT_DAYS)),
    )
    del events
    require_test_pairs(split.stats)
    split.stats["snapshot_hash"] = manifest.get("content_hash")
    split.stats["dataset"] = manifest.get("dataset")
    if paths.features_dir.exists():
        shutil.rmtree(paths.features_dir)
    with step(f"writing features to {paths.features_dir}"):
        split.save(paths.features_dir)
    log.info(
        "features: %d users x %d items, %d train interactions, %d test pairs (%d cold users)",
        split.stats["n_users"],
        split.stats["n_items"],
        split.stats["matrix_nnz"],
        split.stats["n_test_pairs"],
        split.stats["n_test_users_cold"],
    )
    return split
