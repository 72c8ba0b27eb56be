"""EventStore: idempotent ingest, item upserts, quarantine, GDPR delete, snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recops.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from recops.data.hashing import ContentHasher
from recops.data.sources.base import RawData
from recops.data.store import EventStore
from recops.data.validation import ValidationResult, validate_events, validate_items
from recops.errors import DataSourceError

NOW = pd.Timestamp("2024-06-01")


def raw_events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(user, item, timestamp, value) rows as a source would return them."""
    frame = pd.DataFrame(
        rows, columns=[Columns.user, Columns.item, Columns.timestamp, Columns.value]
    )
    frame[Columns.event_type] = "click"
    frame[Columns.weight] = None
    frame[Columns.source_row] = np.arange(1, len(frame) + 1)
    return frame


ROWS = [
    ("u1", "i1", "1000", "1"),
    ("u1", "i2", "2000", "2"),
    ("u2", "i1", "1500", "3"),
    ("u2", "i3", "never", ""),  # quarantined: bad_timestamp
    ("u3", "i2", "2500", ""),
]
ITEMS = pd.DataFrame(
    {
        Columns.item: ["i1", "i2", None],
        Columns.title: ["One", "Two", "Nobody"],
        Columns.price: ["1", "2", "3"],
    }
)


def batch(
    rows: list[tuple[str, str, str, str]] = ROWS,
    items: pd.DataFrame | None = ITEMS,
    origin: str = "events.csv",
) -> tuple[RawData, ValidationResult, ValidationResult | None]:
    events = raw_events(rows)
    raw = RawData(events=events, items=items, origin=origin, content_hash="abc")
    items_result = validate_items(items, origin) if items is not None else None
    return raw, validate_events(events, origin, now=NOW), items_result


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "nested" / "dir" / "store.duckdb") as opened:
        yield opened


def test_ingest_counts_and_reingest_is_idempotent(store: EventStore) -> None:
    first = store.ingest("shop", *batch())
    assert (first.n_rows, first.n_valid, first.n_inserted, first.n_quarantined) == (5, 4, 4, 1)
    assert first.rule_counts == {"bad_timestamp": 1}
    assert first.item_rule_counts == {"missing_item": 1} and first.status == "ok"
    counts = store.counts("shop")
    second = store.ingest("shop", *batch())
    assert second.n_inserted == 0 and second.n_already_present == 4
    assert store.counts("shop")["events"] == counts["events"] == 4
    batches = store.batches("shop")
    assert len(batches) == 2
    assert batches["n_inserted"].tolist() == [4, 0]
    assert batches["status"].tolist() == ["ok", "ok"]
    assert batches["batch_id"].tolist() == [first.batch_id, second.batch_id]


def test_overlapping_batch_inserts_only_new_events(store: EventStore) -> None:
    store.ingest("shop", *batch())
    report = store.ingest("shop", *batch([*ROWS, ("u4", "i1", "3000", "")], items=None))
    assert (report.n_inserted, report.n_already_present) == (1, 4)
    assert store.counts("shop")["users"] == 4


def test_datasets_are_separate(store: EventStore) -> None:
    store.ingest("a", *batch())
    report = store.ingest("b", *batch())
    assert report.n_inserted == 4
    assert store.counts("a")["events"] == store.counts("b")["events"] == 4


def test_items_upsert_replaces_old_values(store: EventStore) -> None:
    store.ingest("shop", *batch())
    newer = pd.DataFrame({Columns.item: ["i2", "i9"], Columns.title: ["Two v2", "Nine"]})
    store.ingest("shop", *batch(items=newer))
    items = store.con.execute(
        "SELECT item_id, title, price FROM items WHERE dataset = 'shop' ORDER BY item_id"
    ).df()
    assert items[Columns.item].tolist() == ["i1", "i2", "i9"]
    assert items[Columns.title].tolist() == ["One", "Two v2", "Nine"]
    assert np.isnan(items[Columns.price].iloc[1])  # whole row replaced


def test_quarantine_rows_keep_rule_detail_raw_and_batch(store: EventStore) -> None:
    report = store.ingest("shop", *batch())
    rows = store.quarantine_rows(report.batch_id)
    assert rows[Columns.rule].tolist() == ["items:missing_item", "bad_timestamp"]
    assert rows[Columns.source_row].tolist() == [3, 4]
    assert "'never'" in rows[Columns.detail].iloc[1]
    assert json.loads(rows["raw"].iloc[1])[Columns.user] == "u2"
    again = store.ingest("shop", *batch())
    assert again.n_quarantined == 1  # the batch still reports what it found ...
    assert len(store.quarantine_rows()) == 2  # ... but the quarantine is idempotent (issue 12.15)
    assert store.counts("shop")["quarantined"] == 2


def test_failed_ingest_leaves_no_partial_batch(store: EventStore) -> None:
    raw, events, _ = batch()
    broken_items = ValidationResult(
        valid=pd.DataFrame({c: [None] for c in ITEM_COLUMNS}),  # NULL item_id violates NOT NULL
        quarantine=pd.DataFrame(),
        counts={},
    )
    with pytest.raises(Exception, match=r"(?i)null"):
        store.ingest("shop", raw, events, broken_items)
    assert store.counts("shop")["events"] == 0
    assert store.counts("shop")["quarantined"] == 0
    assert store.batches("shop")["status"].tolist() == ["failed"]
    assert store.ingest("shop", *batch()).n_inserted == 4  # the store is still usable


def test_gdpr_delete_user(store: EventStore, tmp_path: Path) -> None:
    store.ingest("shop", *batch([*ROWS, ("u2", "i9", "later", "")]))
    store.ingest("other", *batch())
    assert store.delete_user("shop", "u2") == 1
    assert store.delete_user("shop", "u2") == 0
    manifest = store.export_snapshot("shop", tmp_path / "snap")
    events = pd.read_parquet(tmp_path / "snap" / "events.parquet")
    assert "u2" not in set(events[Columns.user]) and manifest.n_users == 2
    raws = [
        json.loads(r)[Columns.user]
        for r in store.quarantine_rows()["raw"]
        if Columns.user in json.loads(r)
    ]
    assert raws == ["u2"]  # only the other dataset's quarantined row of u2 is left
    assert store.counts("other")["users"] == 3


def test_snapshot_files_and_manifest(store: EventStore, tmp_path: Path) -> None:
    store.ingest("shop", *batch())
    manifest = store.export_snapshot("shop", tmp_path / "snap")
    events = pd.read_parquet(tmp_path / "snap" / "events.parquet")
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events[Columns.timestamp].dtype == "datetime64[ns]"
    assert events[Columns.timestamp].is_monotonic_increasing
    items = pd.read_parquet(tmp_path / "snap" / "items.parquet")
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert items[Columns.item].tolist() == ["i1", "i2"]  # i3 only appears in a quarantined row
    on_disk = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert on_disk == manifest.to_dict()
    assert (manifest.n_events, manifest.n_users, manifest.n_items) == (4, 3, 2)
    assert manifest.time_min == "1970-01-01T00:16:40"
    assert manifest.time_max == "1970-01-01T00:41:40"


def test_items_snapshot_adds_null_rows_for_unknown_event_items(
    store: EventStore, tmp_path: Path
) -> None:
    store.ingest("shop", *batch([*ROWS, ("u9", "i7", "100", "")]))
    manifest = store.export_snapshot("shop", tmp_path)
    items = pd.read_parquet(tmp_path / "items.parquet")
    assert items[Columns.item].tolist() == ["i1", "i2", "i7"]
    assert (manifest.n_items, manifest.n_catalog_items) == (3, 3)
    assert items.iloc[2][[Columns.title, Columns.category, Columns.tags]].isna().all()


def test_snapshot_hash_is_deterministic_and_tracks_content(tmp_path: Path) -> None:
    def snapshot_hash(name: str, rows: list[tuple[str, str, str, str]]) -> str:
        with EventStore(tmp_path / f"{name}.duckdb") as st:
            st.ingest("shop", *batch(rows))
            return st.export_snapshot("shop", tmp_path / name).content_hash

    base = snapshot_hash("a", ROWS)
    assert snapshot_hash("b", list(reversed(ROWS))) == base  # order of ingestion is irrelevant
    changed = [*ROWS[:-1], ("u3", "i2", "2500", "5")]
    assert snapshot_hash("c", changed) != base
    with EventStore(tmp_path / "a.duckdb") as st:  # re-export of the same store
        assert st.export_snapshot("shop", tmp_path / "a2").content_hash == base


def test_export_of_unknown_dataset_is_an_error(store: EventStore, tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="'nothing' has no events"):
        store.export_snapshot("nothing", tmp_path)


def test_store_persists_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with EventStore(path) as st:
        st.ingest("shop", *batch())
    with EventStore(path) as st:
        assert st.counts("shop") == {
            "events": 4,
            "users": 3,
            "items": 2,
            "catalog_items": 2,
            "batches": 1,
            "quarantined": 2,
        }
        assert st.ingest("shop", *batch()).batch_id == 2


def test_content_hash_ignores_batch_boundaries_but_not_values() -> None:
    table = pa.table(
        {
            Columns.user: ["a", "bb", None, "dddd"],
            Columns.timestamp: pa.array([1, 2, None, 4], pa.timestamp("ns")),
            Columns.value: [1.0, float("nan"), None, 4.0],
        }
    )

    def digest(tbl: pa.Table, size: int) -> str:
        hasher = ContentHasher(tbl.schema)
        for batch in tbl.to_batches(max_chunksize=size):
            hasher.update(batch)
        return hasher.hexdigest()

    assert digest(table, 1) == digest(table, 3) == digest(table, 4)
    moved = table.set_column(0, Columns.user, pa.array(["ab", "b", None, "dddd"]))
    assert digest(moved, 4) != digest(table, 4)  # same bytes, different split between rows
    nulled = table.set_column(2, Columns.value, pa.array([1.0, None, None, 4.0]))
    assert digest(nulled, 4) != digest(table, 4)  # NaN and null differ
