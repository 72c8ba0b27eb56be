"""Precomputed top-k for every user the model serves (`recops bento precompute`).

The table answers the default request (exclude seen items, no filters, no rerank, k up to the
precomputed k) without scoring; users below `min_history` and unknown users are left to the
fallback, so every user still gets an answer. One parquet file: user_id, item_ids, scores
(and score_low, score_high with `serve.uncertainty.precompute` for models that give intervals),
with the model name/version in the file's metadata (a table of another version is ignored).
It is computed and written in chunks of users (one parquet row group each), so memory stays
bounded by the chunk's dense score block however many users there are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recops.columns import Columns
from recops.console import progress
from recops.models.recommender import Recommender

log = logging.getLogger(__name__)
META_KEY = b"recops.precomputed"
CHUNK = 2048
#: Bytes of dense scores (users x items, float32) per chunk: bounds the memory of a run.
SCORE_BUDGET = 256 * 2**20
LOW, HIGH = "score_low", "score_high"


def eligible_users(recommender: Recommender, min_history: int) -> np.ndarray:
    """Indices of users with at least `min_history` training interactions (model-served)."""
    history = np.diff(recommender.model.seen.indptr)
    return np.flatnonzero(history >= max(int(min_history), 1))


def chunk_size(n_items: int, budget: int = SCORE_BUDGET) -> int:
    """Users per chunk so that their dense scores fit in `budget` bytes."""
    return int(max(1, min(CHUNK, budget // max(4 * n_items, 1))))


def chunks(
    recommender: Recommender,
    users: np.ndarray,
    k: int,
    level: float | None = None,
    size: int | None = None,
) -> Iterator[pa.Table]:
    """One arrow table per chunk of `users` (exact top-k from the model's `recommend`), with
    score intervals at `level` when given."""
    model = recommender.model
    size = size or chunk_size(model.n_items)
    external = recommender.items.external_ids
    for start in range(0, len(users), size):
        chunk = users[start : start + size]
        ids, scores = model.recommend(chunk, k, exclude_seen=True)
        valid = ids >= 0  # padding (-1) only ever trails a row
        offsets = pa.array(np.concatenate([[0], np.cumsum(valid.sum(axis=1))]), pa.int32())
        flat = ids[valid]
        columns = {
            Columns.user: pa.array(recommender.users.to_external(chunk).astype(str)),
            "item_ids": pa.ListArray.from_arrays(offsets, pa.array(external[flat].astype(str))),
            "item_idx": pa.ListArray.from_arrays(offsets, pa.array(flat, pa.int32())),
            "scores": pa.ListArray.from_arrays(offsets, pa.array(scores[valid], pa.float64())),
        }
        if level is not None:
            bounds = [
                model.score_intervals(int(user), ids[row][valid[row]], level)
                for row, user in enumerate(chunk.tolist())
            ]
            for name, side in ((LOW, 0), (HIGH, 1)):
                values = np.concatenate([b[side] for b in bounds]) if bounds else np.zeros(0)
                columns[name] = pa.ListArray.from_arrays(offsets, pa.array(values, pa.float64()))
        yield pa.table(columns, schema=schema(level is not None))


def schema(intervals: bool) -> pa.Schema:
    floats = pa.list_(pa.float64())
    fields = [
        (Columns.user, pa.string()),
        ("item_ids", pa.list_(pa.string())),
        # the model's item indices (the table belongs to one model version): no id lookups
        # when a million users' rows are loaded
        ("item_idx", pa.list_(pa.int32())),
        ("scores", floats),
    ]
    return pa.schema(fields + ([(LOW, floats), (HIGH, floats)] if intervals else []))


def compute(
    recommender: Recommender, min_history: int, k: int, level: float | None = None
) -> pd.DataFrame:
    """user_id, item_ids (list), scores (list) for every model-served user (in memory: for
    small worlds and tests; `write_chunked` streams to a file)."""
    users = eligible_users(recommender, min_history)
    parts = list(chunks(recommender, users, k, level))
    if not parts:
        return pd.DataFrame({Columns.user: [], "item_ids": [], "scores": []})
    return pa.concat_tables(parts).to_pandas()


def write_chunked(
    recommender: Recommender,
    path: Path,
    meta: dict[str, Any],
    min_history: int,
    k: int,
    level: float | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """Compute and write the table chunk by chunk (a row group each, with progress);
    atomically replaces `path`. Returns the coverage."""
    users = eligible_users(recommender, min_history)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer: pq.ParquetWriter | None = None
    encoded = {META_KEY: json.dumps({**meta, "intervals": level}).encode()}
    try:
        with progress("precompute top-k", len(users), unit="users") as bar:
            for table in chunks(recommender, users, k, level, size):
                table = table.replace_schema_metadata(encoded)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                bar.advance(table.num_rows)
        if writer is None:  # no model-served user: an empty table
            writer = pq.ParquetWriter(tmp, schema(level is not None).with_metadata(encoded))
        writer.close()
        writer = None
        tmp.replace(path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return coverage_counts(recommender, len(users), min_history)


def coverage(recommender: Recommender, table: pd.DataFrame, min_history: int) -> dict[str, Any]:
    return coverage_counts(recommender, len(table), min_history)


def coverage_counts(recommender: Recommender, covered: int, min_history: int) -> dict[str, Any]:
    n_users = len(recommender.users)
    return {
        "known_users": n_users,
        "precomputed_users": covered,
        "precomputed_share": covered / n_users if n_users else 0.0,
        "fallback_known_users": n_users - covered,
        "min_history": int(min_history),
        "note": "users below min_history and unknown users are answered by the fallback",
    }


def write(table: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata(
        {**(arrow.schema.metadata or {}), META_KEY: json.dumps(meta).encode()}
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(arrow, tmp)
    tmp.replace(path)


def read_meta(path: Path) -> dict[str, Any]:
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return dict(json.loads(raw)) if raw else {}


@dataclass(frozen=True)
class Precomputed:
    """user id -> (item indices, scores), best first, for one model version: flat arrays with
    row offsets (compact for a million users)."""

    users: dict[str, int]
    bounds: np.ndarray  # row r's items are flat[bounds[r] : bounds[r + 1]]
    item_idx: np.ndarray  # -1: an item this model does not know (dropped when answering)
    scores: np.ndarray
    k: int
    meta: dict[str, Any]
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def _span(self, user_id: str, k: int) -> tuple[slice, np.ndarray] | None:
        row = self.users.get(user_id)
        if row is None or k > self.k:
            return None
        span = slice(int(self.bounds[row]), int(self.bounds[row + 1]))
        return span, self.item_idx[span] >= 0

    def get(self, user_id: str, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        found = self._span(user_id, k)
        if found is None:
            return None
        span, keep = found
        return self.item_idx[span][keep][:k], self.scores[span][keep][:k]

    def intervals_of(self, user_id: str, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's (score_low, score_high) for the top k, if the table has intervals."""
        found = self._span(user_id, k)
        if found is None or self.low is None or self.high is None:
            return None
        span, keep = found
        return self.low[span][keep][:k], self.high[span][keep][:k]

    def info(self) -> dict[str, Any]:
        return {"users": len(self.users), "k": self.k, **self.meta}


def load(
    path: Path,
    recommender: Recommender,
    model_name: str,
    version: str | None,
    run_id: str | None = None,
) -> Precomputed:
    """Read a table for this model version (ValueError if it was made for another one: other
    name, version, or run when both know it, e.g. the same version number of another store)."""
    meta = read_meta(path)
    same_run = run_id is None or meta.get("run_id") is None or meta.get("run_id") == run_id
    if (
        meta.get("model_name") != model_name
        or str(meta.get("version")) != str(version)
        or not (same_run)
    ):
        raise ValueError(
            f"{path} holds {meta.get('model_name')} v{meta.get('version')} "
            f"(run {meta.get('run_id')}), not {model_name} v{version} (run {run_id})"
        )
    table = pq.read_table(path)
    scores = table.column("scores").combine_chunks()
    offsets = np.asarray(scores.offsets.to_numpy(), dtype=np.int64)
    bounds = offsets - offsets[0]  # flatten() starts at the first row's first value
    if "item_idx" in table.column_names:
        item_idx = _values(table, "item_idx").astype(np.int64)
        item_idx[item_idx >= recommender.model.n_items] = -1
    else:  # a table written before item indices were stored: look the ids up
        ids = table.column("item_ids").combine_chunks().flatten().to_pylist()
        item_idx = recommender.items.lookup(ids) if ids else np.zeros(0, np.int64)
    users = table.column(Columns.user).to_pylist()
    has_intervals = LOW in table.column_names and HIGH in table.column_names
    return Precomputed(
        users={str(u): row for row, u in enumerate(users)},
        bounds=bounds,
        item_idx=item_idx,
        scores=_values(table, "scores").astype(np.float32),
        k=int(meta.get("k", 0)),
        meta=meta,
        low=_values(table, LOW).astype(np.float32) if has_intervals else None,
        high=_values(table, HIGH).astype(np.float32) if has_intervals else None,
    )


def _values(table: pa.Table, name: str) -> np.ndarray:
    """The flat values of a list column (rows in order)."""
    return np.asarray(table.column(name).combine_chunks().flatten().to_numpy())
