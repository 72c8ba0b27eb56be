"""`sorted_codes`: exactly `pd.factorize(sort=True)`, through Arrow for string ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recops.features.events import sorted_codes


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
