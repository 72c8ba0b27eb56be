from __future__ import annotations

import pandas as pd
import pytest

from recops.errors import ConfigError
from recops.monitoring.windows import is_window, parse_window

FIRST, LAST = pd.Timestamp("2024-01-01 10:00"), pd.Timestamp("2024-02-26 12:00")


def test_relative_windows_are_anchored_on_the_first_and_last_event() -> None:
    start, end = parse_window("first:42d").bounds(FIRST, LAST)
    assert (start, end) == (FIRST, FIRST + pd.Timedelta(days=42))
    start, end = parse_window("last:14d").bounds(FIRST, LAST)
    assert end > LAST and end - start == pd.Timedelta(days=14)
    assert parse_window("last:2w").length == pd.Timedelta(days=14)
    assert parse_window("last:36h").length == pd.Timedelta(hours=36)


def test_date_range_and_all() -> None:
    start, end = parse_window("2024-01-01..2024-02-01").bounds(FIRST, LAST)
    assert (start, end) == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01"))
    start, end = parse_window("all").bounds(FIRST, LAST)
    assert start == FIRST and end > LAST


@pytest.mark.parametrize("spec", ["last:14", "first:0d", "2024-02-01..2024-01-01", "recent"])
def test_bad_specs_are_rejected(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_window(spec)
    assert not is_window(spec)
