"""run_ingest end to end on a small events file: load -> validate -> store -> snapshot."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from recops.columns import Columns
from recops.data.ingest import IngestReport, run_ingest
from recops.data.sources.events import EventsFileSource
from recops.errors import DataSourceError

MAPPING = {"user": "user", "item": "item", "timestamp": "ts", "weight": "w"}
CSV = (
    "user,item,ts,w\n"
    "u1,i1,1700000000,1\n"
    "u1,i2,2023-11-15T10:00:00Z,\n"
    "u2,i1,1700000100,2\n"
    "u2,i2,not a time,\n"
    "u3,i1,,\n"
    "u3,i2,1700000200,-3\n"
)


def ingest(tmp_path: Path, csv: str = CSV, console: Console | None = None) -> IngestReport:
    path = tmp_path / "events.csv"
    path.write_text(csv)
    source = EventsFileSource(str(path), MAPPING, name="shop_events")
    return run_ingest(
        source,
        "shop",
        tmp_path / "store" / "events.duckdb",
        tmp_path / "snapshot",
        console=console or Console(file=io.StringIO()),
    )


def test_run_ingest_reports_counts_logs_rules_and_writes_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    logger = logging.getLogger("recops.data.ingest")
    logger.addHandler(caplog.handler)  # works even when "recops" does not propagate to root
    try:
        with caplog.at_level(logging.INFO, logger="recops.data.ingest"):
            report = ingest(tmp_path, console=Console(file=out, width=120))
    finally:
        logger.removeHandler(caplog.handler)
    batch = report.batch
    assert (batch.n_rows, batch.n_valid, batch.n_inserted, batch.n_quarantined) == (6, 3, 3, 3)
    assert batch.rule_counts == {"bad_timestamp": 2, "negative_weight": 1}
    assert "quarantined 3 event rows: bad_timestamp=2, negative_weight=1" in caplog.text
    table = out.getvalue()
    assert "bad_timestamp" in table and "negative_weight" in table
    snap = tmp_path / "snapshot"
    assert {p.name for p in snap.iterdir()} == {"events.parquet", "items.parquet", "manifest.json"}
    events = pd.read_parquet(snap / "events.parquet")
    assert events[Columns.user].tolist() == ["u1", "u2", "u1"]
    assert report.snapshot.n_events == 3
    assert json.loads(json.dumps(report.to_dict()))["snapshot"]["dataset"] == "shop"


def test_rerun_is_idempotent(tmp_path: Path) -> None:
    first = ingest(tmp_path)
    second = ingest(tmp_path)
    assert second.batch.n_inserted == 0 and second.batch.n_already_present == 3
    assert second.snapshot.content_hash == first.snapshot.content_hash
    assert second.snapshot.n_events == first.snapshot.n_events


def test_all_rows_quarantined_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"no valid events; all 2 rows quarantined"):
        ingest(tmp_path, "user,item,ts,w\nu1,i1,never,\n,i2,1,\n")


def test_source_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no rows"):
        ingest(tmp_path, "user,item,ts,w\n")
