"""`recops gdpr export-user`: everything RecOps holds about one user, as one JSON document.

Events and quarantined rows from the DuckDB store (with the batch, file and content hash they
came in), the registered versions trained with the user's data, the derived files that hold
the id, and the current recommendations with their source, computed from the champion the way
the service answers a default request (precomputed table, model, or fallback).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import find_project_root
from recops.data.store import EventStore
from recops.gdpr import files
from recops.gdpr.erase import owned_roots
from recops.gdpr.identity import ErasureList, read_salt, user_hash
from recops.gdpr.settings import GdprSettings, ServedAnswer
from recops.gdpr.versions import downloaded, recommender_folders, scan_versions
from recops.models.recommender import Recommender
from recops.tracking.store import configure_tracking

SCHEMA_VERSION = 1
PRECOMPUTED_META = b"recops.precomputed"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict("records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def store_rows(path: Path, user_id: str) -> dict[str, list[dict[str, Any]]]:
    if not path.exists():
        return {"events": [], "quarantine": []}
    with EventStore(path) as store:
        rows = store.user_rows(user_id)
    return {name: _records(frame) for name, frame in rows.items()}


def current_recommendations(
    served: ServedAnswer, client: MlflowClient, user_id: str, erased: bool
) -> dict[str, Any]:
    """The champion's default answer for the user and where it comes from."""
    name, alias, k, min_history = served.model_name, served.alias, served.k, served.min_history
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return {"source": None, "note": f"no {alias} version of {name}: nothing is served"}
    with downloaded(version) as folder:
        folders = recommender_folders(folder)
        if not folders:
            return {"source": None, "note": f"v{version.version} holds no recops recommender"}
        rec = Recommender.load(folders[0])
    idx = int(rec.users.lookup([user_id])[0])
    history = 0 if idx < 0 else int(np.diff(rec.model.seen.indptr)[idx])
    personal = not erased and idx >= 0 and history >= min_history
    source = "model" if personal else "fallback"
    table = _precomputed_row(served, user_id, str(version.version)) if personal else None
    if table is not None:
        items, source = table, "precomputed"
    else:
        frame = rec.recommend([user_id], k=k, on_unknown="popular") if personal else None
        ids, scores = (
            (frame["item_id"].tolist(), frame["score"].tolist())
            if frame is not None
            else _popular(rec, k)
        )
        items = [{"item_id": str(i), "score": float(s)} for i, s in zip(ids, scores, strict=True)]
    why = (
        "erased: answered as an unknown user"
        if erased
        else f"{history} training interactions (serve.min_history={min_history})"
    )
    return {
        "model": name,
        "version": str(version.version),
        "alias": alias,
        "source": source,
        "why": why,
        "note": "the service's fallback also blends content similarity; popularity shown",
        "items": items,
    }


def _popular(rec: Recommender, k: int) -> tuple[list[Any], list[float]]:
    ids, scores = rec.popular_indices(1, k)
    valid = ids[0] >= 0
    return list(rec.items.to_external(ids[0][valid])), scores[0][valid].astype(float).tolist()


def _precomputed_row(
    served: ServedAnswer, user_id: str, version: str
) -> list[dict[str, Any]] | None:
    path = served.precomputed
    if path is None or not path.is_file():
        return None
    # the table's model version, as `recops.serving.precompute` writes it in the file metadata
    meta = json.loads((pq.read_schema(path).metadata or {}).get(PRECOMPUTED_META, b"{}"))
    if str(meta.get("version")) != version:
        return None
    table = pd.read_parquet(path, filters=[("user_id", "==", user_id)])
    if table.empty:
        return None
    row = table.iloc[0]
    return [
        {"item_id": str(i), "score": float(s)}
        for i, s in zip(row["item_ids"], row["scores"], strict=True)
    ]


def export_user(cfg: DictConfig, user_id: str, root: Path | None = None) -> dict[str, Any]:
    root = root or find_project_root()
    s = GdprSettings.from_config(cfg, root)
    uri = configure_tracking(root)
    client = MlflowClient(uri)
    salt = read_salt(s.salt_file)
    erased = salt is not None and user_hash(salt, user_id) in ErasureList(s.erasure_list).hashes()
    hits, unreadable = scan_versions(client, s.model_name, user_id)
    held = files.files_holding([p for p in owned_roots(s, uri) if p.exists()], user_id)
    return {
        "schema_version": SCHEMA_VERSION,
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "erased": erased,
        "store": {"path": str(s.duckdb), **store_rows(s.duckdb, user_id)},
        "model_versions": [h.to_dict() for h in hits],
        "unreadable_versions": unreadable,
        "files": [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in held],
        "recommendations": current_recommendations(
            ServedAnswer.from_config(cfg, root), client, user_id, erased
        ),
    }
