"""Benchmarks write their results under reports/benchmarks/ (run with `make bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from recops.features.dataset import SplitData

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS = PROJECT_ROOT / "reports" / "benchmarks"
ML_SMALL = PROJECT_ROOT.parent / "shared" / "datasets" / "ml-latest-small"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "benchmarks" in str(item.path):
            item.add_marker(pytest.mark.benchmark)


def build_features(folder: Path, overrides: list[str]) -> SplitData:
    """The ingest and features stages of the config `overrides`, into `folder` (its own
    DuckDB, `snap/` and `features/`); returns the split the features stage built."""
    from recops.config import compose
    from recops.pipeline.context import StagePaths
    from recops.pipeline.prepare import features_stage, ingest_stage

    cfg = compose(
        [
            *overrides,
            f"paths.duckdb={folder / 'db.duckdb'}",
            f"paths.snapshot_dir={folder / 'snap'}",
            f"paths.features_dir={folder / 'features'}",
        ]
    )
    paths = StagePaths.from_config(cfg)
    ingest_stage(cfg, paths)
    return features_stage(cfg, paths)
