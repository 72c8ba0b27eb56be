"""The features stage on a real (tiny) snapshot: a split without test pairs is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.config import compose
from recops.errors import ConfigError
from recops.pipeline.context import StagePaths
from recops.pipeline.prepare import features_stage, ingest_stage


def stage_config(tmp_path: Path, csv: str) -> tuple[object, StagePaths]:
    path = tmp_path / "events.csv"
    path.write_text(csv)
    cfg = compose(
        [
            "data=events",
            f"data.path={path}",
            "data.columns.user=user",
            "data.columns.item=item",
            "data.columns.timestamp=ts",
            f"paths.duckdb={tmp_path / 'store.duckdb'}",
            f"paths.snapshot_dir={tmp_path / 'snapshot'}",
            f"paths.features_dir={tmp_path / 'features'}",
        ]
    )
    return cfg, StagePaths.from_config(cfg)


def test_a_split_without_test_pairs_says_what_to_change(tmp_path: Path) -> None:
    one_event_each = "user,item,ts\n" + "".join(
        f"u{i},i{i % 3},{1700000000 + i}\n" for i in range(9)
    )
    cfg, paths = stage_config(tmp_path, one_event_each)
    ingest_stage(cfg, paths)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"left no test interactions.*split\.test_fraction"):
        features_stage(cfg, paths)  # type: ignore[arg-type]
    assert not (paths.features_dir / "manifest.json").exists()


def test_features_stage_writes_a_split(tmp_path: Path) -> None:
    rows = "".join(
        f"u{u},i{(u + j) % 5},{1700000000 + 60 * j}\n" for u in range(6) for j in range(5)
    )
    cfg, paths = stage_config(tmp_path, "user,item,ts\n" + rows)
    ingest_stage(cfg, paths)  # type: ignore[arg-type]
    split = features_stage(cfg, paths)  # type: ignore[arg-type]
    assert split.stats["n_test_pairs"] > 0 and (paths.features_dir / "manifest.json").exists()
