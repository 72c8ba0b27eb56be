"""Derived files without one user: snapshots, features, saved recommenders, precomputed
tables, dropped event files. Each is rewritten next to itself and then swapped in (a file by
`os.replace`, a folder by two renames), so readers see the old or the new version, never half.

What a folder is decides how it is rewritten: a saved recommender (`recommender.json`) loses
the user's id-map entry and model rows; a features folder (`user_items.npz`) loses the user's
matrix row, training events and test pairs, re-indexed; a snapshot (`events.parquet` +
`manifest.json`) loses the user's events and gets a new manifest. Any other parquet file with a
`user_id` column, and CSV/TSV files with the user column, lose the user's rows.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recops.columns import Columns
from recops.data.hashing import ContentHasher
from recops.features.dataset import Dataset, SplitData
from recops.features.idmap import IdMap
from recops.models.recommender import Recommender

RECOMMENDER_MARK = "recommender.json"
FEATURES_MARK = "user_items.npz"
SNAPSHOT_EVENTS, MANIFEST = "events.parquet", "manifest.json"
TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t"}
#: MLflow's example files (a few training user ids): the user's entries are dropped.
EXAMPLE_FILES = ("input_example.json", "serving_input_example.json")
_BATCH = 65_536


@dataclass
class Touched:
    """One rewritten file or folder and how many of the user's rows it lost."""

    path: str
    kind: str  # recommender | features | snapshot | parquet | csv | json
    rows: int
    model_type: str | None = None
    erasure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# ------------------------------------------------------------------ finding what to rewrite


def targets(roots: Iterable[Path]) -> Iterator[tuple[str, Path]]:
    """(kind, path) of every rewritable thing under `roots` (files or folders)."""
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        for kind, path in _walk(root):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                yield kind, path


def _walk(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_file():
        kind = _file_kind(path)
        if kind:
            yield kind, path
        return
    if path.name.startswith(".") and path.name.endswith((".gdpr-new", ".gdpr-old")):
        return
    if (path / RECOMMENDER_MARK).is_file():
        yield "recommender", path
        return
    if (path / FEATURES_MARK).is_file() and (path / MANIFEST).is_file():
        yield "features", path
        return
    if (path / SNAPSHOT_EVENTS).is_file() and (path / MANIFEST).is_file():
        yield "snapshot", path
    for child in sorted(path.iterdir()):
        if child.name == SNAPSHOT_EVENTS and (path / MANIFEST).is_file():
            continue
        yield from _walk(child)


def _file_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if path.name in EXAMPLE_FILES:
        return "json"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "csv"
    return None


def contains_id(path: Path, user_id: str) -> bool:
    """Whether the file's bytes hold the id as a whole token (not inside a longer id)."""
    token = re.compile(rb"(?<![\w.-])" + re.escape(user_id.encode()) + rb"(?![\w-])")
    with path.open("rb") as handle:
        tail = b""
        while chunk := handle.read(1 << 20):
            if token.search(tail + chunk):
                return True
            tail = chunk[-len(user_id) - 2 :]
    return False


def holds_id(path: Path, user_id: str) -> bool:
    """Whether the file holds the id: its bytes, and for parquet (compressed pages) the
    decoded values of its string and string-list columns."""
    if contains_id(path, user_id):
        return True
    if _file_kind(path) != "parquet":
        return False
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return False
    for column in table.columns:
        values = column
        while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        if is_text and pc.any(pc.equal(pc.utf8_trim_whitespace(values), user_id)).as_py():
            return True
    return False


def files_holding(roots: Iterable[Path], user_id: str) -> list[Path]:
    """Every file under `roots` that holds the id (what a user's data still lives in)."""
    found: list[Path] = []
    for root in roots:
        files = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file())
        found.extend(p for p in files if holds_id(p, user_id))
    return sorted(found)


# ------------------------------------------------------------------ rewriting


def erase(kind: str, path: Path, user_id: str, user_columns: tuple[str, ...]) -> Touched | None:
    """Rewrite `path` without the user; None when it held nothing of theirs."""
    eraser = _ERASERS[kind]
    return eraser(path, user_id, user_columns)


def _recommender(path: Path, user_id: str, _: tuple[str, ...]) -> Touched | None:
    rec = Recommender.load(path)
    redacted, removed = rec.without_users([user_id])
    if not removed:
        return None
    replace_folder(path, redacted.save)
    model = rec.model
    return Touched(str(path), "recommender", removed, rec.model_type, type(model).erasure)


def redact_split(split: SplitData, user_id: str) -> tuple[SplitData, int]:
    """The split without the user: matrix row, training events and test pairs, re-indexed.
    The manifest (split statistics) is kept, so the registry still finds this holdout."""
    train = split.train
    idx = train.users.lookup([user_id])
    test = split.test
    in_test = (test[Columns.user].astype(str) == user_id).to_numpy()
    if idx[0] < 0 and not in_test.any():
        return split, 0
    keep = np.setdiff1d(np.arange(train.n_users), idx[idx >= 0])
    new_index = np.full(train.n_users, -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    events = train.events
    removed = int(in_test.sum())
    if events is not None:
        mine = new_index[events[Columns.user_idx].to_numpy()] < 0
        removed += int(mine.sum())
        events = events[~mine].copy()
        events[Columns.user_idx] = new_index[events[Columns.user_idx].to_numpy()].astype(
            events[Columns.user_idx].dtype
        )
    else:
        removed += int(train.user_items[idx[idx >= 0]].nnz)
    test = test[~in_test].copy()
    warm = test[Columns.user_idx].to_numpy() >= 0
    mapped = test[Columns.user_idx].to_numpy().copy()
    mapped[warm] = new_index[mapped[warm]]
    test[Columns.user_idx] = pd.Series(mapped, index=test.index).astype(
        test[Columns.user_idx].dtype
    )
    new_train = Dataset(
        users=IdMap(train.users.external_ids[keep], kind="user"),
        items=train.items,
        user_items=train.user_items[keep].tocsr(),
        item_meta=train.item_meta,
        item_features=train.item_features,
        item_feature_names=train.item_feature_names,
        events=events,
        activity=train.activity,
    )
    return SplitData(new_train, test, split.stats), max(removed, 1)


def _features(path: Path, user_id: str, _: tuple[str, ...]) -> Touched | None:
    redacted, removed = redact_split(SplitData.load(path), user_id)
    if not removed:
        return None
    replace_folder(path, redacted.save)
    return Touched(str(path), "features", removed)


def _snapshot(path: Path, user_id: str, _: tuple[str, ...]) -> Touched | None:
    events = path / SNAPSHOT_EVENTS
    removed = filter_parquet(events, user_id, (Columns.user,))
    if not removed:
        return None
    manifest_path = path / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.update(snapshot_stats(events))
    write_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Touched(str(path), "snapshot", removed)


def snapshot_stats(events: Path) -> dict[str, Any]:
    """The manifest fields that depend on the events (as `EventStore.export_snapshot`)."""
    table = pq.read_table(events)
    hasher = ContentHasher(table.schema)
    for batch in table.to_batches(_BATCH):
        hasher.update(batch)
    times = table.column(Columns.timestamp)
    return {
        "n_events": table.num_rows,
        "n_users": len(pc.unique(table.column(Columns.user))),
        "n_items": len(pc.unique(table.column(Columns.item))),
        "time_min": pc.min(times).as_py().isoformat() if table.num_rows else None,
        "time_max": pc.max(times).as_py().isoformat() if table.num_rows else None,
        "content_hash": hasher.hexdigest(),
    }


def _parquet(path: Path, user_id: str, columns: tuple[str, ...]) -> Touched | None:
    removed = filter_parquet(path, user_id, columns)
    return Touched(str(path), "parquet", removed) if removed else None


def filter_parquet(path: Path, user_id: str, columns: tuple[str, ...]) -> int:
    """Drop the rows whose user column is the id (streamed by batches); rows removed."""
    source = pq.ParquetFile(path)
    names = set(source.schema_arrow.names)
    column = next((c for c in (Columns.user, *columns) if c in names), None)
    if column is None:
        return 0
    kind = source.schema_arrow.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return 0
    tmp = path.with_name(f".{path.name}.gdpr-tmp")
    removed = 0
    with pq.ParquetWriter(tmp, source.schema_arrow) as writer:
        for batch in source.iter_batches(_BATCH):
            ids = pc.utf8_trim_whitespace(batch.column(column))
            mine = pc.fill_null(pc.equal(ids, user_id), False)
            removed += pc.sum(mine).as_py() or 0
            writer.write_batch(batch.filter(pc.invert(mine)))
    if removed:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return int(removed)


def _csv(path: Path, user_id: str, columns: tuple[str, ...]) -> Touched | None:
    delimiter = TEXT_SUFFIXES[path.suffix.lower()]
    tmp = path.with_name(f".{path.name}.gdpr-tmp")
    removed = 0
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as src:
        reader = csv.reader(src, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return None
        names = [h.strip() for h in header]
        index = next((names.index(c) for c in (*columns, Columns.user) if c in names), None)
        if index is None:
            return None
        with tmp.open("w", newline="", encoding="utf-8", errors="surrogateescape") as dst:
            writer = csv.writer(dst, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            for row in reader:
                if len(row) > index and row[index].strip() == user_id:
                    removed += 1
                else:
                    writer.writerow(row)
    if removed:
        os.replace(tmp, path)
        return Touched(str(path), "csv", removed)
    tmp.unlink()
    return None


def _json(path: Path, user_id: str, _: tuple[str, ...]) -> Touched | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    cleaned, removed = drop_from_json(data, user_id)
    if not removed:
        return None
    write_atomic(path, json.dumps(cleaned))
    return Touched(str(path), "json", removed)


def drop_from_json(node: Any, user_id: str) -> tuple[Any, int]:
    """`node` without list entries equal to the id or rows (lists) holding it."""
    if isinstance(node, dict):
        out, removed = {}, 0
        for key, value in node.items():
            out[key], n = drop_from_json(value, user_id)
            removed += n
        return out, removed
    if isinstance(node, list):
        kept, removed = [], 0
        for value in node:
            if value == user_id or (isinstance(value, list) and user_id in value):
                removed += 1
                continue
            cleaned, n = drop_from_json(value, user_id)
            kept.append(cleaned)
            removed += n
        return kept, removed
    return node, 0


_ERASERS: dict[str, Callable[[Path, str, tuple[str, ...]], Touched | None]] = {
    "recommender": _recommender,
    "features": _features,
    "snapshot": _snapshot,
    "parquet": _parquet,
    "csv": _csv,
    "json": _json,
}


# ------------------------------------------------------------------ swapping


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.gdpr-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def replace_folder(target: Path, build: Callable[[Path], None]) -> None:
    """Build a new version of `target` beside it (files the builder does not write are
    copied over unchanged), then swap it in by renames and delete the old one."""
    new = target.with_name(f".{target.name}.gdpr-new")
    old = target.with_name(f".{target.name}.gdpr-old")
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    build(new)
    for path in target.rglob("*"):
        twin = new / path.relative_to(target)
        if path.is_file() and not twin.exists():
            twin.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, twin)
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)
