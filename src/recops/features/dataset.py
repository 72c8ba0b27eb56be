"""The training dataset every model consumes, and the held-out test set next to it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.columns import Columns
from recops.features.activity import ItemActivity
from recops.features.idmap import IdMap

_USERS = "users.parquet"
_ITEMS = "items.parquet"
_MATRIX = "user_items.npz"
_ITEM_FEATURES = "item_features.npz"
_FEATURE_NAMES = "item_feature_names.json"
_EVENTS = "train_events.parquet"
_ACTIVITY = "item_activity.npz"
_TEST = "test.parquet"
_MANIFEST = "manifest.json"


@dataclass
class Dataset:
    """Interactions in index space plus the maps back to external ids.

    `user_items` is users x items (CSR, float32, summed event weights). `items` holds item
    metadata in item-index order. `events` are the individual training events (user_idx,
    item_idx, timestamp, weight) for models that need order or recency. `activity` is the
    items' recent popularity and last use (the features stage computes it once; trained
    recommenders carry it for serving).
    """

    users: IdMap
    items: IdMap
    user_items: sp.csr_matrix
    item_meta: pd.DataFrame
    item_features: sp.csr_matrix | None = None
    item_feature_names: list[str] = field(default_factory=list)
    events: pd.DataFrame | None = None
    activity: ItemActivity | None = None
    #: The saved training events this dataset was loaded from (a parquet an engine such as
    #: Spark can read itself); None for a dataset built in memory.
    events_uri: str | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def item_popularity(self) -> np.ndarray:
        """Number of distinct training users per item (stored zeros do not count)."""
        matrix = self.user_items.tocsr()
        return np.bincount(matrix.indices[matrix.data > 0], minlength=self.n_items).astype(np.int64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({Columns.user: self.users.external_ids.astype(str)}).to_parquet(
            folder / _USERS, index=False
        )
        self.item_meta.to_parquet(folder / _ITEMS, index=False)
        sp.save_npz(folder / _MATRIX, self.user_items, compressed=False)
        if self.item_features is not None:
            sp.save_npz(folder / _ITEM_FEATURES, self.item_features, compressed=False)
            (folder / _FEATURE_NAMES).write_text(json.dumps(self.item_feature_names))
        if self.events is not None:
            self.events.to_parquet(folder / _EVENTS, index=False)
        if self.activity is not None:
            self.activity.save(folder / _ACTIVITY)

    @staticmethod
    def load_events(folder: Path, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
        """The saved training events (only `columns`, if given), or None if none were saved."""
        path = folder / _EVENTS
        return (
            pd.read_parquet(path, columns=list(columns) if columns else None)
            if path.exists()
            else None
        )

    @classmethod
    def load(cls, folder: Path, with_events: bool = True) -> Dataset:
        users = pd.read_parquet(folder / _USERS)[Columns.user].to_numpy(dtype=object)
        item_meta = pd.read_parquet(folder / _ITEMS)
        features = None
        names: list[str] = []
        if (folder / _ITEM_FEATURES).exists():
            features = sp.load_npz(folder / _ITEM_FEATURES).tocsr()
            names = json.loads((folder / _FEATURE_NAMES).read_text())
        events_path = folder / _EVENTS
        events = pd.read_parquet(events_path) if with_events and events_path.exists() else None
        activity_path = folder / _ACTIVITY
        activity = ItemActivity.load(activity_path) if activity_path.exists() else None
        return cls(
            users=IdMap(users, kind="user"),
            items=IdMap(item_meta[Columns.item].to_numpy(dtype=object), kind="item"),
            user_items=sp.load_npz(folder / _MATRIX).tocsr(),
            item_meta=item_meta,
            item_features=features,
            item_feature_names=names,
            events=events,
            activity=activity,
            events_uri=str(events_path) if events_path.exists() else None,
        )


@dataclass
class SplitData:
    """A training `Dataset` and the test pairs held out from it.

    `test` has one row per (user, item) test pair: the external user id, `user_idx` (-1 for
    cold users, who have no training history) and `item_idx` (only items seen in training).
    """

    train: Dataset
    test: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)

    def cold_test(self) -> pd.DataFrame:
        return self.test[self.test[Columns.user_idx] < 0]

    def save(self, folder: Path) -> None:
        self.train.save(folder)
        self.test.to_parquet(folder / _TEST, index=False)
        (folder / _MANIFEST).write_text(json.dumps(self.stats, indent=2, default=str))

    @classmethod
    def load(cls, folder: Path, with_events: bool = True) -> SplitData:
        stats = cls.load_stats(folder)
        return cls(
            train=Dataset.load(folder, with_events=with_events),
            test=pd.read_parquet(folder / _TEST),
            stats=stats,
        )

    @staticmethod
    def load_stats(folder: Path) -> dict[str, Any]:
        """The split's manifest (sizes, config, snapshot hash) without loading any data."""
        if not (folder / _MANIFEST).exists():
            from recops.errors import DataSourceError

            raise DataSourceError(
                f"{folder} holds no features (no {_MANIFEST}); run the features stage first"
            )
        return dict(json.loads((folder / _MANIFEST).read_text()))
