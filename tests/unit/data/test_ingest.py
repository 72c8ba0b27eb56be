"""run_ingest end to end on a small events file: load -> validate -> store -> snapshot."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from recops.columns import Columns
from recops.data.ingest import IngestReport, IngestSettings, run_ingest
from recops.data.sources.events import EventsFileSource
from recops.data.sources.synthetic import SyntheticSource
from recops.data.store import EventStore
from recops.errors import ConfigError, DataSourceError

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


def stored(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with EventStore(db) as store:
        events = store.con.execute(
            "SELECT user_id, item_id, timestamp, event_type, value, weight FROM events ORDER BY ALL"
        ).fetchall()
        quarantine = store.con.execute(
            "SELECT source_row, rule, detail, raw FROM quarantine ORDER BY ALL"
        ).fetchall()
    return events, quarantine


def test_chunked_ingest_equals_one_shot_ingest(tmp_path: Path) -> None:
    """A file much larger than the chunk: same events, quarantine and counts, including
    duplicates whose first occurrence is in an earlier chunk (quoted with their raw row)."""
    rng = np.random.default_rng(3)
    n = 400
    users = rng.choice(["u1", "u2", "u3", "", "NaN"], n)
    stamps = rng.choice(["1700000000", "1700000100", "2023-11-15T10:00:00Z", "never"], n)
    weights = rng.choice(["", "1", "-2", "x"], n)
    lines = [
        f"{u},i{rng.integers(3)},{t},{w}" for u, t, w in zip(users, stamps, weights, strict=True)
    ]
    csv = "user,item,ts,w\n" + "\n".join(lines) + "\n"
    reports = {}
    for chunk_rows in (10**6, 50):
        folder = tmp_path / str(chunk_rows)
        folder.mkdir()
        path = folder / "events.csv"
        path.write_text(csv)
        reports[chunk_rows] = run_ingest(
            EventsFileSource(str(path), MAPPING, name="shop_events"),
            "shop",
            folder / "store.duckdb",
            folder / "snapshot",
            console=Console(file=io.StringIO()),
            settings=IngestSettings(chunk_rows=chunk_rows),
        )
    one, chunked = reports[10**6].batch, reports[50].batch
    assert one.rule_counts["duplicate"] > 50  # duplicates span chunks of 50 rows
    for key in ("n_rows", "n_valid", "n_inserted", "n_quarantined", "rule_counts"):
        assert getattr(one, key) == getattr(chunked, key), key
    assert one.n_rows == one.n_valid + one.n_quarantined == n
    one_events, one_quarantine = stored(tmp_path / str(10**6) / "store.duckdb")
    chunk_events, chunk_quarantine = stored(tmp_path / "50" / "store.duckdb")
    assert one_events == chunk_events and one_quarantine == chunk_quarantine
    assert reports[10**6].snapshot.content_hash == reports[50].snapshot.content_hash


def test_chunked_synthetic_world_equals_one_shot(tmp_path: Path) -> None:
    world = {"n_users": 300, "n_items": 100, "n_events": 5000, "n_categories": 5}
    hashes = set()
    for chunk_rows in (10**6, 999):
        folder = tmp_path / str(chunk_rows)
        report = run_ingest(
            SyntheticSource(**world),  # type: ignore[arg-type]
            "syn",
            folder / "store.duckdb",
            folder / "snapshot",
            console=Console(file=io.StringIO()),
            settings=IngestSettings(chunk_rows=chunk_rows),
        )
        assert report.batch.n_quarantined == 0
        hashes.add(report.snapshot.content_hash)
    assert len(hashes) == 1


def test_bad_ingest_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="chunk_rows"):
        IngestSettings.from_config({"chunk_rows": 0})
    with pytest.raises(ConfigError, match="future_tolerance_days"):
        IngestSettings.from_config({"future_tolerance_days": "soon"})
    with pytest.raises(ConfigError, match="memory_limit"):
        EventStore(":memory:", memory_limit="lots")
