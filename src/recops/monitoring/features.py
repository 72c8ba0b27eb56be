"""The drift features of one side of a check, each a column of values to compare by PSI.

Features live on different grains (users, items, events, sessions, recommendations), so each
is its own column and the frame is padded with NaN (Evidently and `psi` drop missing values).
Counts are made scale-free where the window length would otherwise dominate: a 2-week window
has fewer events per user than a 6-week one without anything having drifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recops.columns import Columns
from recops.features.events import user_time_order
from recops.monitoring.frames import EventWindow

if TYPE_CHECKING:
    from recops.models.recommender import Recommender

NEW, KNOWN = "new", "known"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # numerical | categorical
    group: str  # users | items | events | sessions | model
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("user_activity", "numerical", "users",
            "events per active user, relative to the window's mean (log1p)"),
    Feature("item_popularity", "numerical", "items",
            "interactions per item per 1,000 events of the window (log1p)"),
    Feature("new_items", "categorical", "items",
            "per event: is the item new (absent from the reference)?"),
    Feature("event_type", "categorical", "events", "event-type mix"),
    Feature("category", "categorical", "events", "category of the interacted item"),
    Feature("price", "numerical", "events", "price of the interacted item"),
    Feature("session_length", "numerical", "sessions",
            "events per session (a gap longer than drift.session_gap_minutes starts a new one)"),
    Feature("reco_popularity", "numerical", "model",
            "training popularity of the champion's recommended items (log1p)"),
)  # fmt: skip
FEATURE_BY_NAME = {f.name: f for f in FEATURES}


#: Default `drift.max_values`: the most values of one feature a side hands to the report.
MAX_VALUES = 200_000


def event_features(
    side: EventWindow,
    known_items: set[str] | None,
    session_gap: pd.Timedelta,
    max_values: int | None = MAX_VALUES,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Columns of every data feature; `known_items` None means this side is the reference.

    Works on the codes of categorical id columns (what store and snapshot sides hold), so no
    per-event id strings are made; plain string columns (an events file) are coded first.
    Counts (activity, popularity, sessions) use every event; a column longer than
    `max_values` is then a seeded uniform sample of its values (at 20M events, 200k values
    gave every feature's PSI within 1e-3 of 1M values', and the report stops growing with the
    window).
    """
    events = side.events
    users, _ = _codes(events[Columns.user])
    items, item_values = _codes(events[Columns.item])
    per_user = _group_sizes(users)
    per_item = _group_sizes(items)
    rng = np.random.default_rng(seed)
    rows = _sample(len(events), max_values, rng)  # per-event features: only the sampled rows
    sampled_items = items if rows is None else items[rows]
    is_new = (
        np.zeros(len(sampled_items), bool)
        if known_items is None
        else ~_isin(item_values, known_items)[sampled_items]
    )
    event_type = events[Columns.event_type]
    meta = _item_meta(side.items)
    columns = {
        "user_activity": np.log1p(per_user / per_user.mean()) if len(per_user) else per_user,
        "item_popularity": np.log1p(per_item * 1000.0 / max(len(events), 1)),
        "new_items": np.where(is_new, NEW, KNOWN).astype(object),
        "event_type": (event_type if rows is None else event_type.iloc[rows]).to_numpy(object),
        "category": meta[Columns.category].reindex(item_values).to_numpy(object)[sampled_items],
        "price": meta[Columns.price].reindex(item_values).to_numpy(np.float64)[sampled_items],
        "session_length": session_lengths(events, session_gap),
    }
    for name in ("user_activity", "item_popularity", "session_length"):
        keep = _sample(len(columns[name]), max_values, rng)
        if keep is not None:
            columns[name] = columns[name][keep]
    return columns


def _sample(n: int, max_values: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted positions of a uniform sample of `max_values` out of `n`; None: keep all."""
    if max_values is None or n <= max_values:
        return None
    return np.sort(rng.choice(n, size=max_values, replace=False))


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values of an id column (categorical or plain)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), column.cat.categories.to_numpy(dtype=object)
    codes, values = pd.factorize(column, sort=False)
    return codes, np.asarray(values, dtype=object)


def _isin(values: np.ndarray, known: Any) -> np.ndarray:
    """Hash-based membership (np.isin compares object arrays pairwise: quadratic)."""
    return np.asarray(pd.Index(values, dtype=object).isin(list(known)), dtype=bool)


def _group_sizes(codes: np.ndarray) -> np.ndarray:
    """Rows per present code, in order of first appearance (as groupby(sort=False).size())."""
    if not len(codes):
        return np.empty(0, np.float64)
    counts = np.bincount(codes)
    present = pd.unique(codes)  # hash-based, in order of first appearance (np.unique sorts)
    return counts[present].astype(np.float64)


def _item_meta(items: pd.DataFrame | None) -> pd.DataFrame:
    if items is None or items.empty:
        return pd.DataFrame({Columns.category: [], Columns.price: []}, index=pd.Index([]))
    unique = items.drop_duplicates(Columns.item, keep="first").set_index(Columns.item)
    return unique[[Columns.category, Columns.price]].astype({Columns.price: np.float64})


def session_lengths(events: pd.DataFrame, gap: pd.Timedelta) -> np.ndarray:
    """Events per session: a user's events split wherever the gap between two exceeds `gap`."""
    if events.empty:
        return np.empty(0)
    users, _ = _codes(events[Columns.user])
    stamps = events[Columns.timestamp].to_numpy(dtype="datetime64[ns]")
    order = user_time_order(users, stamps)
    users, times = users[order], stamps[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | ((times[1:] - times[:-1]) > gap.to_timedelta64())
    boundaries = np.flatnonzero(starts)
    return np.diff(np.append(boundaries, len(order))).astype(np.float64)


def _present_codes(codes: np.ndarray, n_values: int) -> np.ndarray:
    """The distinct non-negative codes, sorted (a counting pass; np.unique sorts every row)."""
    valid = codes[codes >= 0] if len(codes) and codes.min() < 0 else codes
    return np.flatnonzero(np.bincount(valid, minlength=n_values))


def sample_users(events: pd.DataFrame, n: int, seed: int) -> list[str]:
    codes, values = _codes(events[Columns.user])
    users = np.sort(values[_present_codes(codes, len(values))].astype(str))
    if len(users) <= n:
        return users.tolist()
    return np.random.default_rng(seed).choice(users, size=n, replace=False).tolist()


def model_output(recommender: Recommender, users: list[str], k: int) -> tuple[np.ndarray, float]:
    """Training popularity (log1p) of each recommended item, and the catalogue coverage.

    Users the model does not know get its popularity fallback, as they would when served."""
    if not users:
        return np.empty(0), float("nan")
    ids, _ = recommender.recommend_indices(users, k, on_unknown="popular")
    recommended = ids[ids >= 0]
    popularity = np.log1p(recommender.popularity[recommended].astype(np.float64))
    coverage = len(np.unique(recommended)) / max(len(recommender.items), 1)
    return popularity, float(coverage)


def side_stats(side: EventWindow, reference: EventWindow | None) -> dict[str, float]:
    """Scalar facts about a side; shares of new users/items are relative to the reference."""
    events = side.events
    stats: dict[str, float] = {}
    if reference is not None and len(events):
        for column, key in ((Columns.item, "new_item_share"), (Columns.user, "new_user_share")):
            known = present_values(reference.events[column])
            codes, values = _codes(events[column])
            stats[key] = float((~_isin(values, known))[codes].mean())
    return stats


def present_values(column: pd.Series) -> np.ndarray:
    """The distinct values that occur in an id column (a categorical may list unused ones)."""
    codes, values = _codes(column)
    return values[_present_codes(codes, len(values))]


def padded_frame(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Columns of different lengths side by side, NaN-padded to the longest."""
    length = max((len(v) for v in columns.values()), default=0)
    return pd.DataFrame(
        {name: pd.Series(values).reindex(range(length)) for name, values in columns.items()}
    )


def usable(values: np.ndarray | Any, min_samples: int) -> bool:
    return int(pd.Series(values).notna().sum()) >= min_samples
