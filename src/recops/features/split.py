"""Train/test splitters. Each returns a boolean test mask over an events frame.

Configured in `conf/split/` and built with `hydra.utils.instantiate`. The frame must carry
`Columns.user` and `Columns.timestamp`; ties in time keep the frame's order (the snapshot is
sorted by timestamp, user, item, event type, so results are deterministic).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import pandas as pd

from recops.columns import Columns
from recops.errors import ConfigError
from recops.features.events import user_time_order


class Splitter(Protocol):
    """Marks which events are held out for testing."""

    def test_mask(self, events: pd.DataFrame) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


def _positions_within_user(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each row: its 0-based position in its user's time order, and the user's event count."""
    users = events[Columns.user].to_numpy()
    # a stable order: ties in (user, time) keep the frame's order, as the docstring says
    order = user_time_order(users, events[Columns.timestamp].to_numpy())
    users_sorted = users[order]
    starts = np.r_[True, users_sorted[1:] != users_sorted[:-1]]
    group_id = np.cumsum(starts) - 1
    group_start = np.flatnonzero(starts)
    sizes = np.diff(np.r_[group_start, len(events)])
    pos_sorted = np.arange(len(events)) - group_start[group_id]
    position = np.empty(len(events), dtype=np.int64)
    count = np.empty(len(events), dtype=np.int64)
    position[order] = pos_sorted
    count[order] = sizes[group_id]
    return position, count


def _check_fraction(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"split.test_fraction must be in (0, 1), got {value}")
    return float(value)


class TimeSplit:
    """Each user's last `test_fraction` of interactions (by time) are test.

    A user with n interactions gives ceil(n * test_fraction) of them to test, keeping at least
    one in training (so a user with a single interaction has no test items). This is the
    protocol of the reference figures in `shared/datasets/README.md`.
    """

    def __init__(self, test_fraction: float = 0.2) -> None:
        self.test_fraction = _check_fraction(test_fraction)

    def test_mask(self, events: pd.DataFrame) -> np.ndarray:
        if events.empty:
            return np.zeros(0, dtype=bool)
        position, count = _positions_within_user(events)
        n_test = np.minimum(np.ceil(count * self.test_fraction - 1e-9), count - 1)
        return position >= count - n_test

    def describe(self) -> dict[str, Any]:
        return {"type": "time", "test_fraction": self.test_fraction}


class GlobalTimeSplit:
    """Events at or after the (1 - test_fraction) quantile of time are test."""

    def __init__(self, test_fraction: float = 0.2) -> None:
        self.test_fraction = _check_fraction(test_fraction)

    def cutoff(self, events: pd.DataFrame) -> pd.Timestamp:
        ts = events[Columns.timestamp].sort_values(kind="stable").to_numpy()
        idx = min(len(ts) - 1, math.floor(len(ts) * (1.0 - self.test_fraction)))
        return pd.Timestamp(ts[idx])

    def test_mask(self, events: pd.DataFrame) -> np.ndarray:
        if events.empty:
            return np.zeros(0, dtype=bool)
        return (events[Columns.timestamp] >= self.cutoff(events)).to_numpy()

    def describe(self) -> dict[str, Any]:
        return {"type": "global_time", "test_fraction": self.test_fraction}


class LeaveLastNSplit:
    """Each user's last `n` interactions are test; users with at most `n` stay whole in train."""

    def __init__(self, n: int = 1) -> None:
        if n < 1:
            raise ConfigError(f"split.n must be >= 1, got {n}")
        self.n = int(n)

    def test_mask(self, events: pd.DataFrame) -> np.ndarray:
        if events.empty:
            return np.zeros(0, dtype=bool)
        position, count = _positions_within_user(events)
        return (count > self.n) & (position >= count - self.n)

    def describe(self) -> dict[str, Any]:
        return {"type": "leave_last_n", "n": self.n}
