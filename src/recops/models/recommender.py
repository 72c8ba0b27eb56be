"""A fitted model plus its id maps and item metadata: recommendations in external ids.

This is what gets saved as the model artifact, logged to MLflow and served.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recops.columns import Columns
from recops.features.activity import RECENT_DAYS, ItemActivity
from recops.features.dataset import Dataset
from recops.features.idmap import IdMap
from recops.models.base import RecModel, load_model, top_k

OnUnknown = Literal["error", "popular"]
_MODEL_DIR = "model"
_USERS = "users.parquet"
_ITEMS = "items.parquet"
_INFO = "recommender.json"
_RECENT = "recent_popularity"
_LAST_SEEN = "last_seen"


@dataclass
class Recommender:
    """External-id facade over a `RecModel`; unknown users can get the popularity fallback."""

    model: RecModel
    users: IdMap
    items: IdMap
    item_meta: pd.DataFrame
    popularity: np.ndarray
    activity: ItemActivity | None = None

    @classmethod
    def from_training(
        cls,
        model: RecModel,
        dataset: Dataset,
        events: pd.DataFrame | None = None,
        recent_days: float = RECENT_DAYS,
    ) -> Recommender:
        """The items' recent activity comes from `dataset.activity` (computed by the features
        stage), else from `events` (training events in `dataset`'s index space) if given."""
        activity = dataset.activity
        if activity is None and events is not None:
            activity = ItemActivity.from_events(events, dataset.n_items, recent_days)
        return cls(
            model,
            dataset.users,
            dataset.items,
            dataset.item_meta,
            dataset.item_popularity().astype(np.float32),
            activity,
        )

    @property
    def model_type(self) -> str:
        return self.model.model_type

    def recommend_indices(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        exclude_items: Sequence[str] = (),
        on_unknown: OnUnknown = "error",
        threads: int = 1,
        on_chunk: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and scores (len(user_ids) x k) in this recommender's item space.

        Known users are scored on `threads` threads; `on_chunk(n)` reports progress."""
        user_idx = (
            self.users.to_internal(user_ids)
            if on_unknown == "error"
            else self.users.lookup(user_ids)
        )
        filtered = self.items.lookup(exclude_items)
        filtered = filtered[filtered >= 0]
        ids = np.full((len(user_idx), k), -1, dtype=np.int64)
        scores = np.full((len(user_idx), k), np.nan, dtype=np.float32)
        known = user_idx >= 0
        if known.any():
            ids[known], scores[known] = self.model.recommend(
                user_idx[known],
                k,
                exclude_seen=exclude_seen,
                filter_items=filtered,
                threads=threads,
                on_chunk=on_chunk,
            )
        if (~known).any():
            ids[~known], scores[~known] = self.popular_indices(int((~known).sum()), k, filtered)
            if on_chunk is not None:
                on_chunk(int((~known).sum()))
        return ids, scores

    def popular_indices(
        self, n_rows: int, k: int, filter_items: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The popularity fallback: the same top-k for `n_rows` users."""
        pop = self.popularity.astype(np.float32).copy()
        pop[pop <= 0] = -np.inf
        if filter_items is not None and len(filter_items):
            pop[filter_items] = -np.inf
        ids, scores = top_k(pop[None, :], k)
        return np.repeat(ids, n_rows, axis=0), np.repeat(scores, n_rows, axis=0)

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Sequence[str] = (),
        on_unknown: OnUnknown = "error",
    ) -> pd.DataFrame:
        """Long frame: user_id, item_id, score, rank (1-based), best first per user."""
        ids, scores = self.recommend_indices(user_ids, k, exclude_seen, exclude_items, on_unknown)
        return self._long_frame(Columns.user, list(user_ids), ids, scores)

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """Long frame: query item_id, similar item id, score, rank."""
        ids, scores = self.model.similar_items(self.items.to_internal(item_ids), k)
        return self._long_frame("query_item_id", list(item_ids), ids, scores)

    def _long_frame(
        self, key: str, keys: list[str], ids: np.ndarray, scores: np.ndarray
    ) -> pd.DataFrame:
        valid = ids >= 0
        rows = np.nonzero(valid)
        return pd.DataFrame(
            {
                key: np.asarray(keys, dtype=object)[rows[0]],
                Columns.item: self.items.to_external(ids[valid]),
                Columns.score: scores[valid].astype(np.float64),
                Columns.rank: (rows[1] + 1).astype(np.int64),
            }
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / _MODEL_DIR)
        pd.DataFrame({Columns.user: self.users.external_ids.astype(str)}).to_parquet(
            folder / _USERS, index=False
        )
        items = self.item_meta.assign(popularity=self.popularity)
        info: dict[str, object] = {
            "model_type": self.model_type,
            "n_users": len(self.users),
            "n_items": len(self.items),
        }
        if self.activity is not None:
            items = items.assign(
                **{_RECENT: self.activity.recent_popularity, _LAST_SEEN: self.activity.last_seen}
            )
            info["activity"] = {
                "window_days": self.activity.window_days,
                "until": self.activity.until,
            }
        items.to_parquet(folder / _ITEMS, index=False)
        (folder / _INFO).write_text(json.dumps(info, indent=2))

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        if not (folder / _INFO).exists():
            raise FileNotFoundError(f"{folder} is not a saved recops recommender (no {_INFO})")
        info = json.loads((folder / _INFO).read_text())
        items = pd.read_parquet(folder / _ITEMS)
        users = pd.read_parquet(folder / _USERS)[Columns.user].to_numpy(dtype=object)
        activity = None
        window = info.get("activity")
        if window and _RECENT in items and _LAST_SEEN in items:
            activity = ItemActivity(
                items[_RECENT].to_numpy(dtype=np.float32),
                items[_LAST_SEEN].to_numpy(dtype=np.float64),
                float(window["window_days"]),
                float(window["until"]),
            )
        extra = [c for c in ("popularity", _RECENT, _LAST_SEEN) if c in items]
        return cls(
            model=load_model(folder / _MODEL_DIR),
            users=IdMap(users, kind="user"),
            items=IdMap(items[Columns.item].to_numpy(dtype=object), kind="item"),
            item_meta=items.drop(columns=extra),
            popularity=items["popularity"].to_numpy(dtype=np.float32),
            activity=activity,
        )
