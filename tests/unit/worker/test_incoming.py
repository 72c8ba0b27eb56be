"""The watched folder: which files wait, ingest-once by content hash, moves that never lose."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from recops.data.store import EventStore
from recops.worker.incoming import (
    ingest_file,
    ingested_hashes,
    items_companion,
    move_done,
    waiting_files,
)

MAPPING = {"columns": {"user": "user_id", "item": "item_id", "timestamp": "timestamp"}}


def _write(path: Path, rows: int = 5, first_user: int = 0) -> Path:
    pd.DataFrame(
        {
            "user_id": [f"u{first_user + i}" for i in range(rows)],
            "item_id": [f"i{i % 3}" for i in range(rows)],
            "timestamp": [1_700_000_000 + i for i in range(rows)],
        }
    ).to_csv(path, index=False)
    return path


def test_waiting_files_skips_companions_partials_hidden_and_subfolders(tmp_path: Path) -> None:
    for name in ("b.csv", "a.parquet", "a.items.csv", ".hidden.csv", "c.csv.part", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "processed").mkdir()
    (tmp_path / "processed" / "old.csv").write_text("x")
    os.utime(tmp_path / "b.csv", (1, 1))  # oldest first
    assert [p.name for p in waiting_files(tmp_path)] == ["b.csv", "a.parquet"]
    assert items_companion(tmp_path / "a.parquet") == tmp_path / "a.items.csv"
    assert waiting_files(tmp_path / "missing") == []


def test_a_file_is_ingested_once_by_content_whatever_its_name(tmp_path: Path) -> None:
    first = _write(tmp_path / "week1.csv")
    with EventStore(tmp_path / "store.duckdb") as store:
        seen = ingested_hashes(store, "ds")
        result = ingest_file(store, "ds", first, MAPPING, seen)
        assert (result.status, result.n_inserted) == ("ingested", 5)
        copy = tmp_path / "copy.csv"
        copy.write_bytes(first.read_bytes())
        again = ingest_file(store, "ds", copy, MAPPING, ingested_hashes(store, "ds"))
        assert again.status == "duplicate" and again.batch_id is None
        assert store.counts("ds")["events"] == 5 and store.counts("ds")["batches"] == 1


def test_unreadable_files_are_rejected_and_kept_with_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    with EventStore(tmp_path / "store.duckdb") as store:
        result = ingest_file(store, "ds", bad, MAPPING, set())
    assert result.status == "rejected" and "user_id" in str(result.error)
    move_done(bad, result, tmp_path / "processed", tmp_path / "rejected")
    kept = tmp_path / "rejected" / "bad.csv"
    assert kept.read_text() == "who,what\n1,2\n"
    assert "user_id" in (tmp_path / "rejected" / "bad.csv.error.txt").read_text()


def test_moves_never_overwrite(tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    for n in range(3):
        path = _write(tmp_path / "same.csv", first_user=n)
        with EventStore(tmp_path / "store.duckdb") as store:
            result = ingest_file(store, "ds", path, MAPPING, set())
        move_done(path, result, processed, tmp_path / "rejected")
    assert len(list(processed.iterdir())) == 3
    assert not (tmp_path / "same.csv").exists()


def test_items_companion_is_ingested_with_its_events(tmp_path: Path) -> None:
    events = _write(tmp_path / "w.csv")
    pd.DataFrame({"item_id": ["i0", "i1"], "category": ["x", "y"], "price": [1.0, 2.0]}).to_csv(
        tmp_path / "w.items.csv", index=False
    )
    with EventStore(tmp_path / "store.duckdb") as store:
        result = ingest_file(store, "ds", events, MAPPING, set())
        assert store.counts("ds")["catalog_items"] == 2
    move_done(events, result, tmp_path / "processed", tmp_path / "rejected")
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["w.csv", "w.items.csv"]
