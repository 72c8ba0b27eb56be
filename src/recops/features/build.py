"""From a snapshot (events + items) to a `SplitData`: weights, split, id maps, matrices."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.columns import Columns
from recops.errors import ConfigError
from recops.features.activity import RECENT_DAYS, ItemActivity
from recops.features.dataset import Dataset, SplitData
from recops.features.idmap import IdMap
from recops.features.split import Splitter

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[a-z0-9]+")


def event_weights(
    events: pd.DataFrame, weights: Mapping[str, float], default_weight: float
) -> np.ndarray:
    """Per-event weight: the event type's configured weight times the row's own weight."""
    for name, value in weights.items():
        if value < 0:
            raise ConfigError(f"features.event_weights.{name} must be >= 0, got {value}")
    by_type = events[Columns.event_type].map(dict(weights)).fillna(default_weight)
    own = events[Columns.weight].fillna(1.0) if Columns.weight in events else 1.0
    return (by_type * own).to_numpy(dtype=np.float32)


def build_split(
    events: pd.DataFrame,
    items: pd.DataFrame | None,
    splitter: Splitter,
    weights: Mapping[str, float],
    default_weight: float = 1.0,
    item_feature_cfg: Mapping[str, Any] | None = None,
    recent_days: float = RECENT_DAYS,
) -> SplitData:
    """Split events in time, index users/items on the training part and build the matrices."""
    if events.empty:
        raise ConfigError("the snapshot holds no events: nothing to train on")
    events = events.assign(**{Columns.weight: event_weights(events, weights, default_weight)})
    events = events[events[Columns.weight] > 0]
    test_mask = splitter.test_mask(events)
    train_ev, test_ev = events[~test_mask], events[test_mask]

    users = IdMap(np.sort(train_ev[Columns.user].unique()).astype(object), kind="user")
    item_meta = _catalogue(items, train_ev)
    item_map = IdMap(item_meta[Columns.item].to_numpy(dtype=object), kind="item")
    train_idx = _indexed(train_ev, users, item_map)
    matrix = _interaction_matrix(train_idx, len(users), len(item_map))
    features, names = build_item_features(item_meta, item_feature_cfg or {})
    activity = ItemActivity.from_events(train_idx, len(item_map), recent_days)
    train = Dataset(users, item_map, matrix, item_meta, features, names, train_idx, activity)
    test, test_stats = _test_pairs(test_ev, train)
    stats = {
        "split": splitter.describe(),
        "n_events": len(events),
        "n_train_events": len(train_ev),
        "n_test_events": len(test_ev),
        "n_users": len(users),
        "n_items": len(item_map),
        "n_items_with_interactions": int((train.item_popularity() > 0).sum()),
        "n_item_features": len(names),
        "matrix_nnz": int(matrix.nnz),
        **test_stats,
    }
    log.debug("split: %s", stats)
    return SplitData(train=train, test=test, stats=stats)


def _catalogue(items: pd.DataFrame | None, train_events: pd.DataFrame) -> pd.DataFrame:
    """Item metadata for every catalogue item and every item seen in training, sorted by id."""
    seen = pd.DataFrame({Columns.item: train_events[Columns.item].unique()})
    if items is None or items.empty:
        meta = seen
    else:
        meta = pd.concat([items, seen[~seen[Columns.item].isin(items[Columns.item])]])
    for col in (Columns.title, Columns.category, Columns.brand, Columns.tags):
        if col not in meta:
            meta[col] = None
    if Columns.price not in meta:
        meta[Columns.price] = np.nan
    meta = meta.drop_duplicates(Columns.item, keep="last").sort_values(Columns.item)
    return meta[
        [Columns.item, Columns.title, Columns.category, Columns.brand, Columns.price, Columns.tags]
    ].reset_index(drop=True)


def _indexed(events: pd.DataFrame, users: IdMap, items: IdMap) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.user_idx: users.lookup(events[Columns.user]).astype(np.int32),
            Columns.item_idx: items.lookup(events[Columns.item]).astype(np.int32),
            Columns.timestamp: events[Columns.timestamp].to_numpy(),
            Columns.weight: events[Columns.weight].to_numpy(dtype=np.float32),
        }
    )


def _interaction_matrix(indexed: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (
            indexed[Columns.weight].to_numpy(dtype=np.float32),
            (indexed[Columns.user_idx].to_numpy(), indexed[Columns.item_idx].to_numpy()),
        ),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def _test_pairs(test_events: pd.DataFrame, train: Dataset) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unique test (user, item) pairs; items unseen in training and already-seen pairs dropped."""
    pairs = test_events[[Columns.user, Columns.item]].drop_duplicates()
    user_idx = train.users.lookup(pairs[Columns.user])
    item_idx = train.items.lookup(pairs[Columns.item])
    popular = train.item_popularity()
    known_item = (item_idx >= 0) & (popular[np.maximum(item_idx, 0)] > 0)
    seen = np.zeros(len(pairs), dtype=bool)
    warm = (user_idx >= 0) & known_item
    if warm.any():
        seen[warm] = np.asarray(train.user_items[user_idx[warm], item_idx[warm]]).ravel() > 0
    keep = known_item & ~seen
    test = pd.DataFrame(
        {
            Columns.user: pairs[Columns.user].to_numpy()[keep],
            Columns.user_idx: user_idx[keep],
            Columns.item_idx: item_idx[keep],
        }
    )
    cold = test[Columns.user_idx] < 0
    stats = {
        "n_test_pairs": len(test),
        "n_test_users_warm": int(test.loc[~cold, Columns.user].nunique()),
        "n_test_users_cold": int(test.loc[cold, Columns.user].nunique()),
        "n_test_pairs_dropped_unseen_item": int((~known_item).sum()),
        "n_test_pairs_dropped_seen_in_train": int(seen.sum()),
    }
    return test.reset_index(drop=True), stats


def build_item_features(
    item_meta: pd.DataFrame, cfg: Mapping[str, Any]
) -> tuple[sp.csr_matrix | None, list[str]]:
    """One-hot categorical columns plus bag-of-tokens columns (items x features, CSR)."""
    names: list[str] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for column in cfg.get("categorical", []):
        values = item_meta[column].astype("string").fillna("")
        codes, uniques = pd.factorize(values)
        present = (codes >= 0) & (values != "").to_numpy()
        rows.append(np.flatnonzero(present))
        cols.append(codes[present] + len(names))
        names.extend(f"{column}={u}" for u in uniques)
    for column in cfg.get("tokens", []):
        tokens = [_tokens(v, column) for v in item_meta[column].tolist()]
        vocab = _vocabulary(tokens, int(cfg.get("min_token_count", 1)))
        offset = len(names)
        for row, toks in enumerate(tokens):
            idx = [vocab[t] for t in toks if t in vocab]
            rows.append(np.full(len(idx), row))
            cols.append(np.asarray(idx, dtype=np.int64) + offset)
        names.extend(f"{column}={t}" for t in vocab)
    if not names:
        return None, []
    r, c = np.concatenate(rows), np.concatenate(cols)
    matrix = sp.csr_matrix(
        (np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(item_meta), len(names))
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix, names


def _tokens(value: object, column: str) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    if column == Columns.tags:
        return sorted({t.strip().lower() for t in value.split("|") if t.strip()})
    return sorted(set(_TOKEN.findall(value.lower())))


def _vocabulary(tokens: Iterable[Sequence[str]], min_count: int) -> dict[str, int]:
    counts = Counter(t for toks in tokens for t in toks)
    kept = sorted(t for t, n in counts.items() if n >= min_count)
    return {t: i for i, t in enumerate(kept)}


def validation_split(split: SplitData, splitter: Splitter) -> SplitData:
    """Carve a validation holdout out of `split.train` with `splitter` (never touching test).

    The result shares the training set's id maps, so a model tuned on it is indexed exactly
    like one trained on the full training data.
    """
    train = split.train
    if train.events is None:
        raise ConfigError("a validation split needs the training events (load with_events=True)")
    events = train.events.rename(columns={Columns.user_idx: Columns.user})
    mask = splitter.test_mask(events)
    fit_events, val_events = train.events[~mask], train.events[mask]
    matrix = _interaction_matrix(fit_events, train.n_users, train.n_items)
    fit = Dataset(
        train.users,
        train.items,
        matrix,
        train.item_meta,
        train.item_features,
        train.item_feature_names,
        fit_events.reset_index(drop=True),
    )
    pairs = val_events[[Columns.user_idx, Columns.item_idx]].drop_duplicates()
    known = fit.item_popularity()[pairs[Columns.item_idx].to_numpy()] > 0
    users = pairs[Columns.user_idx].to_numpy()
    has_history = np.diff(matrix.indptr)[users] > 0
    seen = np.asarray(matrix[users, pairs[Columns.item_idx].to_numpy()]).ravel() > 0
    keep = known & has_history & ~seen
    test = pd.DataFrame(
        {
            Columns.user: train.users.external_ids[users[keep]],
            Columns.user_idx: users[keep],
            Columns.item_idx: pairs[Columns.item_idx].to_numpy()[keep],
        }
    )
    stats = {
        "split": {"type": "validation", **splitter.describe()},
        "n_train_events": len(fit_events),
        "n_test_pairs": len(test),
    }
    return SplitData(train=fit, test=test.reset_index(drop=True), stats=stats)
