"""`recops validate` on a seeded raw file and on a real DuckDB store: exact counts, the
thresholds and the exit code, the reports written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recops.cli import app
from recops.data.store import EventStore
from recops.quality.checks import Limits
from recops.quality.report import parse_thresholds, validate
from recops.worker.incoming import ingest_file

PROJECT = Path(__file__).resolve().parents[3]
MAPPING = {
    "format": "auto",
    "columns": {
        "user": "user_id",
        "item": "item_id",
        "timestamp": "timestamp",
        "event_type": "event_type",
    },
}
SEEDED = (
    "user_id,item_id,timestamp,event_type\n"
    "u1,i1,1700000000,view\n"
    "u1,i1,1700000000,view\n"  # duplicate
    "u1,i1,1700000000,view\n"  # duplicate
    "u2,i2,1700000100,purchase\n"
    ",i3,1700000200,view\n"  # null user
    "u3,,1700000300,view\n"  # null item
    "u4,i4,4102444800,view\n"  # 2100-01-01: future
    "u5,i5,not-a-time,view\n"  # malformed timestamp
    "u6,i6,2023-11-14T22:13:20,cart\n"
    "u2,i1,1700000400,view\n"
)


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "seeded.csv"
    path.write_text(SEEDED)
    return path


def test_seeded_file_counts(seeded: Path, tmp_path: Path) -> None:
    result = validate(
        store=tmp_path / "none.duckdb",
        dataset="shop",
        file=seeded,
        mapping=MAPPING,
        limits=Limits(min_user_events=2, min_item_events=2),
        thresholds=parse_thresholds(["duplicates=0", "future=0"], {}),
        output_dir=tmp_path / "out",
        sample_rows=1000,
    )
    c = result.measures.checks
    assert c["rows"] == 10 and c["duplicates"] == 2 and c["future"] == 1
    assert c["null_ids"] == 2 and c["malformed_timestamps"] == 1
    assert result.measures.columns["user_id"]["null"] == 1
    assert result.measures.columns["item_id"]["null_share"] == pytest.approx(0.1)
    # clean rows: u1 x3 (i1), u2 (i2, i1), u6 (i6); users below 2 events: u6
    assert c["users_under_min_history"] == 1
    assert result.measures.event_types["view"] == pytest.approx(4 / 6)
    assert result.failures == ["duplicates=2 (allowed <= 0)", "future=1 (allowed <= 0)"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] is False and report["checks"]["duplicates"] == 2
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000


def test_cli_exit_code_two_on_failed_threshold_and_zero_otherwise(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOPS_ROOT", str(PROJECT))
    common = [f"paths.reports_dir={tmp_path}", f"paths.duckdb={tmp_path / 'none.duckdb'}"]
    runner = CliRunner()
    failed = runner.invoke(
        app, ["validate", "--file", str(seeded), "--fail-on", "null_ids=0", *common]
    )
    assert failed.exit_code == 2, failed.output
    assert "null_ids=2" in failed.output
    passed = runner.invoke(
        app, ["validate", "--file", str(seeded), "--fail-on", "null_ids=5", *common]
    )
    assert passed.exit_code == 0, passed.output
    bad = runner.invoke(app, ["validate", "--file", str(seeded), "--fail-on", "nonsense", *common])
    assert bad.exit_code == 1 and "expected NAME=VALUE" in bad.output


def test_store_validation_reports_quarantine_by_rule_and_last_batch(tmp_path: Path) -> None:
    store_path = tmp_path / "store.duckdb"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("user_id,item_id,timestamp,event_type\nu1,i1,1000,view\nu2,i1,1100,view\n")
    second.write_text(
        "user_id,item_id,timestamp,event_type\nu1,i2,2000,view\nu3,i2,never,view\n,i2,2100,view\n"
    )
    with EventStore(store_path) as store:
        for path in (first, second):
            assert ingest_file(store, "shop", path, MAPPING, set()).status == "ingested"
    result = validate(
        store=store_path,
        dataset="shop",
        file=None,
        mapping=MAPPING,
        limits=Limits(),
        thresholds=parse_thresholds(["item_metadata_coverage<0.5"], {}),
        output_dir=tmp_path / "out",
        sample_rows=100,
    )
    c = result.measures.checks
    assert c["rows"] == 3 and c["duplicates"] == 0 and c["quarantined"] == 2
    rules = result.measures.extra["quarantine_by_rule"]
    assert sum(rules.values()) == 2 and len(rules) == 2
    assert c["quarantine_share_change"] == pytest.approx(2 / 3)
    assert result.failures == ["item_metadata_coverage=0 (allowed >= 0.5)"]
