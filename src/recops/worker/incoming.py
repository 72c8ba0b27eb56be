"""The watched folder: find dropped event files, ingest each once, move it out of the way.

A file is identified by the sha256 of its bytes (and of its items companion), which the store
records as the batch's `content_hash`: a file whose hash already has an `ok` batch is not
ingested again, whatever its name, even if a crash left it in the folder after its batch
committed. Rows are de-duplicated by event key on top of that (the store's anti-join).
Files are only moved after their batch committed, never deleted: `processed/` for ingested
and duplicate files, `rejected/` (with a `.error.txt`) for files that cannot be read.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from recops.data.hashing import file_sha256
from recops.data.sources.events import ITEM_KEYS, EventsFileSource, detect_format
from recops.data.store import EventStore
from recops.data.validation import validate_events, validate_items
from recops.errors import DataSourceError

log = logging.getLogger(__name__)
EVENT_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
ITEMS_MARK = ".items"
_SKIP_ENDINGS = (".tmp", ".part", ".partial", ".crdownload", ".error.txt")


@dataclass
class FileResult:
    name: str
    status: str  # ingested | duplicate | rejected
    content_hash: str
    batch_id: int | None = None
    n_rows: int = 0
    n_inserted: int = 0
    n_quarantined: int = 0
    moved_to: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_events_file(path: Path) -> bool:
    name = path.name.lower()
    if not path.is_file() or name.startswith(".") or name.endswith(_SKIP_ENDINGS):
        return False
    stem_suffixes = [s.lower() for s in path.suffixes]
    if ITEMS_MARK in stem_suffixes:  # an items companion, ingested with its events file
        return False
    return any(s in stem_suffixes for s in EVENT_SUFFIXES)


def waiting_files(incoming: Path) -> list[Path]:
    """Event files waiting in `incoming` (not its subfolders), oldest first."""
    if not incoming.is_dir():
        return []
    files = [p for p in incoming.iterdir() if _is_events_file(p)]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def items_companion(path: Path) -> Path | None:
    """`week9.items.csv` (or .parquet/...) next to `week9.csv`."""
    stem = path.name.split(".")[0]
    for suffix in EVENT_SUFFIXES:
        candidate = path.with_name(f"{stem}{ITEMS_MARK}{suffix}")
        if candidate.is_file():
            return candidate
    return None


def _items_mapping(path: Path) -> dict[str, Any]:
    """Canonical item columns present in the companion file (only `item_id` is required)."""
    if detect_format(path, "auto") == "parquet":
        header = list(pq.read_schema(path).names)
    else:
        sep = "\t" if detect_format(path, "auto") == "tsv" else ","
        header = [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    columns = {key: f"{key}_id" if key == "item" else key for key in ITEM_KEYS}
    return {
        "path": str(path),
        "format": "auto",
        "columns": {k: c for k, c in columns.items() if c in header},
    }


def ingested_hashes(store: EventStore, dataset: str) -> set[str]:
    batches = store.batches(dataset)
    return set(batches.loc[batches["status"] == "ok", "content_hash"].dropna())


def ingest_file(
    store: EventStore, dataset: str, path: Path, mapping: Mapping[str, Any], seen: set[str]
) -> FileResult:
    """Ingest one dropped file (with its items companion) unless its content was seen."""
    companion = items_companion(path)
    content_hash = file_sha256(path, *([companion] if companion else []))
    result = FileResult(path.name, "duplicate", content_hash)
    if content_hash in seen:
        log.info("%s: already ingested (same content hash), skipped", path.name)
        return result
    try:
        items = _items_mapping(companion) if companion else None
        raw = EventsFileSource(path=str(path), items=items, **dict(mapping)).load()
        events = validate_events(raw.events, raw.origin)
        item_rows = (
            validate_items(raw.items, f"{raw.origin} (items)") if raw.items is not None else None
        )
    except (DataSourceError, ValueError) as exc:
        result.status, result.error = "rejected", str(exc)
        log.warning("%s: rejected (%s)", path.name, exc)
        return result
    batch = store.ingest(dataset, raw, events, item_rows)
    seen.add(content_hash)
    result.status, result.batch_id = "ingested", batch.batch_id
    result.n_rows, result.n_inserted = batch.n_rows, batch.n_inserted
    result.n_quarantined = batch.n_quarantined
    return result


def move_done(path: Path, result: FileResult, processed: Path, rejected: Path) -> None:
    """Move the file (and its companion) out of the watched folder; never overwrite."""
    target_dir = rejected if result.status == "rejected" else processed
    target_dir.mkdir(parents=True, exist_ok=True)
    companion = items_companion(path)
    target = _free_name(target_dir / path.name, result.content_hash)
    shutil.move(str(path), target)
    result.moved_to = str(target)
    if companion is not None:
        shutil.move(str(companion), _free_name(target_dir / companion.name, result.content_hash))
    if result.error:
        target.with_name(target.name + ".error.txt").write_text(result.error + "\n")


def _free_name(target: Path, content_hash: str) -> Path:
    if not target.exists():
        return target
    first = target.name.split(".")[0]
    rest = target.name[len(first) :]
    for n in range(1000):
        suffix = content_hash[:8] if n == 0 else f"{content_hash[:8]}-{n}"
        candidate = target.with_name(f"{first}-{suffix}{rest}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free name for {target}")
