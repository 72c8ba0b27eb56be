"""`sorted_codes`: exactly `pd.factorize(sort=True)`, through Arrow for string ids;
`user_time_order`: exactly `np.lexsort((stamps, users))`, by counting when it can."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.features.events import sorted_codes, user_time_order


@pytest.mark.parametrize(
    "values",
    [
        ["u10", "u2", "u10", "ä", "a", "Z", "u2", "", "😀", "b"],  # byte order = code points
        [3, 1, 3, 2],  # not strings: pandas
        [],
    ],
)
def test_sorted_codes_equal_pandas_factorize(values: list[object]) -> None:
    series = pd.Series(values, dtype=object)
    codes, uniques = sorted_codes(series)
    want_codes, want_uniques = pd.factorize(series, sort=True)
    assert codes.tolist() == want_codes.tolist()
    assert list(uniques) == list(want_uniques)
    assert uniques.dtype == object


def test_sorted_codes_of_many_ids() -> None:
    rng = np.random.default_rng(0)
    ids = np.array([f"u{i}" for i in rng.integers(0, 5000, 50_000)], dtype=object)
    codes, uniques = sorted_codes(ids)
    assert list(uniques) == sorted(set(ids.tolist()))
    assert (uniques[codes] == ids).all()


def _coded_time_sorted(
    rng: np.random.Generator, n: int, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    users = rng.integers(0, n_users, size=n)
    stamps = np.sort(rng.integers(0, n // 4, size=n))  # many ties in time within a user
    return users, stamps


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint32])
def test_user_time_order_of_coded_time_sorted_events_is_lexsort(dtype: type) -> None:
    users, stamps = _coded_time_sorted(np.random.default_rng(1), 5_000, 90)
    users = users.astype(dtype)
    assert user_time_order(users, stamps).tolist() == np.lexsort((stamps, users)).tolist()


@pytest.mark.parametrize(
    "case",
    ["unsorted time", "negative code", "codes beyond the row count", "string users", "datetimes"],
)
def test_user_time_order_of_any_other_events_is_lexsort(case: str) -> None:
    rng = np.random.default_rng(2)
    users, stamps = _coded_time_sorted(rng, 2_000, 50)
    users_any: np.ndarray = users
    if case == "unsorted time":
        stamps = rng.permutation(stamps)
    elif case == "negative code":
        users_any = users - 1
    elif case == "codes beyond the row count":
        users_any = users * 1_000
    elif case == "string users":
        users_any = np.array([f"u{u}" for u in users], dtype=object)
    else:
        stamps = stamps.astype("datetime64[s]").astype("datetime64[ns]")
    want = np.lexsort((stamps, users_any))
    assert user_time_order(users_any, stamps).tolist() == want.tolist()


def test_user_time_order_of_no_events() -> None:
    empty = np.empty(0, dtype=np.int64)
    assert user_time_order(empty, empty).tolist() == []
