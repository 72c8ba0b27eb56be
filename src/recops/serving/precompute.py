"""Precomputed top-k for every user the model serves (`recops bento precompute`).

The table answers the default request (exclude seen items, no filters, no rerank, k up to the
precomputed k) without scoring; users below `min_history` and unknown users are left to the
fallback, so every user still gets an answer. One parquet file: user_id, item_ids, scores,
with the model name/version in the file's metadata (a table of another version is ignored).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recops.columns import Columns
from recops.models.recommender import Recommender

log = logging.getLogger(__name__)
META_KEY = b"recops.precomputed"
CHUNK = 2048


def eligible_users(recommender: Recommender, min_history: int) -> np.ndarray:
    """Indices of users with at least `min_history` training interactions (model-served)."""
    history = np.diff(recommender.model.seen.indptr)
    return np.flatnonzero(history >= max(int(min_history), 1))


def compute(recommender: Recommender, min_history: int, k: int) -> pd.DataFrame:
    """user_id, item_ids (list), scores (list) for every model-served user."""
    users = eligible_users(recommender, min_history)
    ids_out: list[list[str]] = []
    scores_out: list[list[float]] = []
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        ids, scores = recommender.model.recommend(chunk, k, exclude_seen=True)
        external = recommender.items.to_external(ids)
        for row in range(len(chunk)):
            valid = ids[row] >= 0
            ids_out.append([str(x) for x in external[row][valid]])
            scores_out.append(scores[row][valid].astype(float).tolist())
    return pd.DataFrame(
        {
            Columns.user: recommender.users.to_external(users).astype(str),
            "item_ids": ids_out,
            "scores": scores_out,
        }
    )


def coverage(recommender: Recommender, table: pd.DataFrame, min_history: int) -> dict[str, Any]:
    n_users = len(recommender.users)
    covered = len(table)
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
    """user id -> (item indices, scores), best first, for one model version."""

    rows: dict[str, tuple[np.ndarray, np.ndarray]]
    k: int
    meta: dict[str, Any]

    def get(self, user_id: str, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        if k > self.k:
            return None
        row = self.rows.get(user_id)
        if row is None:
            return None
        return row[0][:k], row[1][:k]

    def info(self) -> dict[str, Any]:
        return {"users": len(self.rows), "k": self.k, **self.meta}


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
    table = pd.read_parquet(path)
    lists = table["item_ids"].tolist()
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    flat_ids = [str(i) for items in lists for i in items]
    flat_idx = recommender.items.lookup(flat_ids) if flat_ids else np.zeros(0, np.int64)
    flat_scores = np.asarray(
        [s for scores in table["scores"].tolist() for s in scores], dtype=np.float32
    )
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for row, user in enumerate(table[Columns.user].astype(str).tolist()):
        idx = flat_idx[bounds[row] : bounds[row + 1]]
        keep = idx >= 0
        rows[user] = (idx[keep], flat_scores[bounds[row] : bounds[row + 1]][keep])
    return Precomputed(rows, int(meta.get("k", 0)), meta)
