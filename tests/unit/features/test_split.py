from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.columns import Columns
from recops.errors import ConfigError
from recops.features.split import GlobalTimeSplit, LeaveLastNSplit, TimeSplit


def events(per_user: dict[str, int]) -> pd.DataFrame:
    rows = [
        (user, f"i{j}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=j))
        for user, n in per_user.items()
        for j in range(n)
    ]
    frame = pd.DataFrame(rows, columns=[Columns.user, Columns.item, Columns.timestamp])
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter


def test_time_split_takes_each_users_last_fraction_rounded_up() -> None:
    ev = events({"a": 10, "b": 3, "c": 1})
    mask = TimeSplit(0.2).test_mask(ev)
    test = ev[mask]
    # a: ceil(2.0)=2 test items, the two latest; b: ceil(0.6)=1; c: a single event stays in train
    assert sorted(test[test[Columns.user] == "a"][Columns.item]) == ["i8", "i9"]
    assert test[test[Columns.user] == "b"][Columns.item].tolist() == ["i2"]
    assert "c" not in set(test[Columns.user])


def test_time_split_ties_keep_frame_order() -> None:
    ts = pd.Timestamp("2024-01-01")
    ev = pd.DataFrame(
        {Columns.user: ["a"] * 5, Columns.item: list("vwxyz"), Columns.timestamp: [ts] * 5}
    )
    assert ev[TimeSplit(0.2).test_mask(ev)][Columns.item].tolist() == ["z"]


def test_global_time_split_uses_one_cutoff() -> None:
    ev = events({"a": 10, "b": 10})
    mask = GlobalTimeSplit(0.3).test_mask(ev)
    cutoff = ev[mask][Columns.timestamp].min()
    assert (ev[~mask][Columns.timestamp] < cutoff).all()
    assert mask.mean() == pytest.approx(0.3, abs=0.1)


def test_leave_last_n_keeps_short_users_in_train() -> None:
    ev = events({"a": 5, "b": 2})
    test = ev[LeaveLastNSplit(2).test_mask(ev)]
    assert sorted(test[Columns.item]) == ["i3", "i4"]
    assert set(test[Columns.user]) == {"a"}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_bad_fraction_is_refused(fraction: float) -> None:
    with pytest.raises(ConfigError, match="test_fraction"):
        TimeSplit(fraction)


def test_empty_frame_gives_empty_mask() -> None:
    empty = pd.DataFrame({Columns.user: [], Columns.timestamp: pd.to_datetime([])})
    assert TimeSplit().test_mask(empty).shape == (0,)
    assert np.asarray(LeaveLastNSplit().test_mask(empty)).shape == (0,)


def test_coded_time_sorted_frames_split_as_any_other_frame() -> None:
    """The counting-sort path (integer user codes, time-sorted frame) equals the general one."""
    rng = np.random.default_rng(3)
    n = 5_000
    stamps = np.sort(rng.integers(0, 400, n)).astype("datetime64[s]")  # many ties in time
    codes = rng.integers(0, 700, n).astype(np.int32)
    coded = pd.DataFrame({Columns.user: codes, Columns.timestamp: stamps})
    named = coded.assign(**{Columns.user: [f"user-{c}" for c in codes]})  # the lexsort path
    for splitter in (TimeSplit(0.3), LeaveLastNSplit(2)):
        assert (splitter.test_mask(coded) == splitter.test_mask(named)).all()
