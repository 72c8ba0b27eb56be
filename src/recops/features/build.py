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
from recops.console import step
from recops.errors import ConfigError
from recops.features.activity import RECENT_DAYS, ItemActivity
from recops.features.dataset import Dataset, SplitData
from recops.features.events import CodedEvents, check_weights
from recops.features.idmap import IdMap
from recops.features.split import Splitter

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[a-z0-9]+")


def event_weights(
    events: pd.DataFrame, weights: Mapping[str, float], default_weight: float
) -> np.ndarray:
    """Per-event weight: the event type's configured weight times the row's own weight."""
    check_weights(weights)
    by_type = events[Columns.event_type].map(dict(weights)).fillna(default_weight)
    own = events[Columns.weight].fillna(1.0) if Columns.weight in events else 1.0
    return (by_type * own).to_numpy(dtype=np.float32)


def build_split(
    events: pd.DataFrame | CodedEvents,
    items: pd.DataFrame | None,
    splitter: Splitter,
    weights: Mapping[str, float],
    default_weight: float = 1.0,
    item_feature_cfg: Mapping[str, Any] | None = None,
    recent_days: float = RECENT_DAYS,
) -> SplitData:
    """Split events in time, index users/items on the training part and build the matrices.

    `events` is a frame (small data, tests) or `CodedEvents` read from a snapshot: every step
    below works on integer codes, so its cost is a few numpy passes at any size.
    """
    if len(events) == 0:
        raise ConfigError("the snapshot holds no events: nothing to train on")
    if isinstance(events, pd.DataFrame):
        events = CodedEvents.from_frame(events, weights, default_weight)
    with step(f"splitting {len(events):,} events ({splitter.describe()['type']})"):
        test_mask = np.asarray(splitter.test_mask(events.split_frame()), dtype=bool)
    train_ev, test_ev = events.take(~test_mask), events.take(test_mask)

    user_of_code, users = _train_ids(train_ev.user, events.user_values, "user")
    train_items = np.flatnonzero(np.bincount(train_ev.item, minlength=len(events.item_values)))
    item_meta = _catalogue(items, events.item_values[train_items])
    item_map = IdMap(item_meta[Columns.item].to_numpy(dtype=object), kind="item")
    item_of_code = item_map.lookup(events.item_values).astype(np.int32)
    train_idx = _indexed(train_ev, user_of_code, item_of_code)
    del train_ev
    with step(f"building the {len(users):,} x {len(item_map):,} interaction matrix"):
        matrix = _interaction_matrix(train_idx, len(users), len(item_map))
    features, names = build_item_features(item_meta, item_feature_cfg or {})
    activity = ItemActivity.from_events(train_idx, len(item_map), recent_days)
    train = Dataset(users, item_map, matrix, item_meta, features, names, train_idx, activity)
    test, test_stats = _test_pairs(test_ev, user_of_code, item_of_code, train)
    stats = {
        "split": splitter.describe(),
        "n_events": len(events),
        "n_train_events": len(train_idx),
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


def require_test_pairs(stats: Mapping[str, Any]) -> None:
    """The features stage's check: a split without test pairs cannot be evaluated."""
    if stats["n_test_pairs"] == 0:
        raise ConfigError(_no_test_message(stats))


def _no_test_message(stats: Mapping[str, Any]) -> str:
    split = stats["split"]
    return (
        f"the {split['type']} split ({split}) left no test interactions: "
        f"{stats['n_test_events']:,} of {stats['n_events']:,} events went to test, "
        f"{stats['n_test_pairs_dropped_unseen_item']:,} of their pairs have items unseen in "
        f"training and {stats['n_test_pairs_dropped_seen_in_train']:,} repeat a training pair. "
        "Hold out more (split.test_fraction, or split.n for leave_last_n), choose another "
        "split (split=time, global_time or leave_last_n), or bring more data per user."
    )


def _train_ids(codes: np.ndarray, values: np.ndarray, kind: str) -> tuple[np.ndarray, IdMap]:
    """Sorted id map of the distinct codes, and a code -> index lookup (-1: not in train)."""
    present = np.flatnonzero(np.bincount(codes, minlength=len(values)))  # O(n), no sort
    ids = values[present]
    order = np.argsort(ids.astype(str), kind="stable")
    lookup = np.full(len(values), -1, dtype=np.int32)
    lookup[present[order]] = np.arange(len(present), dtype=np.int32)
    return lookup, IdMap(ids[order], kind=kind)


def _catalogue(items: pd.DataFrame | None, train_items: np.ndarray) -> pd.DataFrame:
    """Item metadata for every catalogue item and every item seen in training, sorted by id."""
    seen = pd.DataFrame({Columns.item: train_items})
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


def _indexed(
    events: CodedEvents, user_of_code: np.ndarray, item_of_code: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.user_idx: user_of_code[events.user],
            Columns.item_idx: item_of_code[events.item],
            Columns.timestamp: events.timestamp,
            Columns.weight: events.weight,
        },
        copy=False,
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


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted user * n_items + item keys of the matrix's stored pairs."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


def _in_sorted(wanted: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of `wanted` occur in the sorted `keys`; the queries are searched in sorted order
    (a binary search per random query misses the cache at every step)."""
    if not len(keys):
        return np.zeros(len(wanted), dtype=bool)
    order = np.argsort(wanted)
    queries = wanted[order]
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = np.empty(len(wanted), dtype=bool)
    found[order] = keys[pos] == queries
    return found


def _test_pairs(
    test_events: CodedEvents, user_of_code: np.ndarray, item_of_code: np.ndarray, train: Dataset
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unique test (user, item) pairs in first-occurrence order; items unseen in training and
    pairs already in the training matrix dropped."""
    keys = test_events.user.astype(np.int64) * len(test_events.item_values) + test_events.item
    first = np.flatnonzero(~pd.Series(keys).duplicated().to_numpy())  # hashing, not sorting
    user_code, item_code = test_events.user[first], test_events.item[first]
    user_idx = user_of_code[user_code].astype(np.int64)
    item_idx = item_of_code[item_code].astype(np.int64)
    popular = train.item_popularity()
    known_item = (item_idx >= 0) & (popular[np.maximum(item_idx, 0)] > 0)
    warm = (user_idx >= 0) & known_item
    seen = np.zeros(len(user_idx), dtype=bool)
    if warm.any():
        train_keys = _pair_keys(train.user_items)
        wanted = user_idx[warm] * train.n_items + item_idx[warm]
        seen[warm] = _in_sorted(wanted, train_keys)
    keep = known_item & ~seen
    test = pd.DataFrame(
        {
            Columns.user: test_events.user_values[user_code[keep]],
            Columns.user_idx: user_idx[keep],
            Columns.item_idx: item_idx[keep],
        }
    )
    cold = user_idx[keep] < 0
    kept_users = user_code[keep]
    stats = {
        "n_test_pairs": len(test),
        "n_test_users_warm": len(np.unique(kept_users[~cold])),
        "n_test_users_cold": len(np.unique(kept_users[cold])),
        "n_test_pairs_dropped_unseen_item": int((~known_item).sum()),
        "n_test_pairs_dropped_seen_in_train": int(seen.sum()),
    }
    return test, stats


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
        # one flat (row, token) pass: no per-item arrays (300k-item catalogues)
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        index = pd.Series([t for toks in tokens for t in toks], dtype=object).map(vocab)
        known = index.notna().to_numpy()
        rows.append(np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)[known])
        cols.append(index.to_numpy()[known].astype(np.int64) + len(names))
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
