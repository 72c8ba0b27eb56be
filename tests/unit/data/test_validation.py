"""Row-level validation of events and items: typing, rules, quarantine, no lost rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recops.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from recops.data.validation import (
    EVENT_RULES,
    ITEM_RULES,
    QUARANTINE_COLUMNS,
    RAW,
    validate_events,
    validate_items,
)
from recops.errors import DataSourceError

NOW = pd.Timestamp("2024-06-01 00:00:00")


def events(*rows: tuple[object, ...]) -> pd.DataFrame:
    """Raw string events: (user, item, timestamp, event_type, value, weight) per row."""
    cols = [Columns.user, Columns.item, Columns.timestamp, Columns.event_type]
    frame = pd.DataFrame(list(rows), columns=[*cols, Columns.value, Columns.weight], dtype=object)
    frame[Columns.source_row] = np.arange(1, len(frame) + 1)
    return frame


def test_valid_rows_are_typed_with_epoch_and_iso_in_one_column() -> None:
    raw = events(
        ("u1", " i1 ", "964982703", "rating", "4.5", ""),
        ("u1", "i2", "2020-01-01T02:00:00+02:00", None, None, "2"),
        ("u2", "i1", "2020-01-01 00:00:00", "click", "", None),
        ("u2", "i2", "2020-01-01T00:00:00Z", "click", "", "0"),
    )
    result = validate_events(raw, "ev.csv", now=NOW)
    valid = result.valid
    assert list(valid.columns) == list(EVENT_COLUMNS)
    assert valid[Columns.timestamp].dtype == "datetime64[ns]"
    assert valid[Columns.value].dtype == "float64" and valid[Columns.weight].dtype == "float64"
    assert valid[Columns.item].tolist() == ["i1", "i2", "i1", "i2"]
    assert valid[Columns.timestamp].tolist() == [
        pd.Timestamp("2000-07-30 18:45:03"),
        pd.Timestamp("2020-01-01 00:00:00"),
        pd.Timestamp("2020-01-01 00:00:00"),
        pd.Timestamp("2020-01-01 00:00:00"),
    ]
    assert valid[Columns.event_type].tolist() == ["rating", "interaction", "click", "click"]
    assert valid[Columns.weight].tolist() == [1.0, 2.0, 1.0, 0.0]
    assert valid[Columns.value].iloc[0] == 4.5 and np.isnan(valid[Columns.value].iloc[2])
    assert result.quarantine.empty and result.counts["valid"] == 4


@pytest.mark.parametrize(
    ("row", "rule", "detail"),
    [
        (("", "i", "1", "c", "", ""), "missing_user", "user_id is missing"),
        (("u", "  ", "1", "c", "", ""), "missing_item", "item_id is missing"),
        (
            ("u", "i", "yesterday", "c", "", ""),
            "bad_timestamp",
            "timestamp 'yesterday' is not epoch seconds or ISO-8601",
        ),
        (("u", "i", None, "c", "", ""), "bad_timestamp", "timestamp is missing"),
        (("u", "i", "-5", "c", "", ""), "bad_timestamp", "before 1970"),
        (("u", "i", "1969-12-31", "c", "", ""), "bad_timestamp", "before 1970"),
        (("u", "i", "2024-06-03", "c", "", ""), "bad_timestamp", "in the future"),
        (("u", "i", "99999999999999999999", "c", "", ""), "bad_timestamp", "in the future"),
        (("u", "i", "1", "c", "five", ""), "bad_value", "value 'five' is not a number"),
        (("u", "i", "1", "c", "", "heavy"), "bad_weight", "weight 'heavy'"),
        (("u", "i", "1", "c", "", "inf"), "bad_weight", "weight 'inf'"),
        (("u", "i", "1", "c", "", "-0.5"), "negative_weight", "weight '-0.5' is negative"),
        (("u" * 257, "i", "1", "c", "", ""), "id_too_long", "user_id is 257 characters"),
        (("u", "i" * 300, "1", "c", "", ""), "id_too_long", "item_id is 300 characters"),
    ],
)
def test_each_rule_quarantines_with_a_detail_naming_the_value(
    row: tuple[object, ...], rule: str, detail: str
) -> None:
    result = validate_events(events(("ok", "i", "1", "c", "", ""), row), "ev.csv", now=NOW)
    assert len(result.valid) == 1
    q = result.quarantine
    assert list(q.columns) == list(QUARANTINE_COLUMNS)
    assert q[Columns.rule].tolist() == [rule]
    assert detail in q[Columns.detail].iloc[0]
    assert q[Columns.source_row].tolist() == [2]
    assert result.counts[rule] == 1 and result.rule_counts == {rule: 1}


def test_first_failing_rule_wins() -> None:
    result = validate_events(events(("", "", "bad", "c", "x", "-1")), "ev.csv", now=NOW)
    assert result.quarantine[Columns.rule].tolist() == ["missing_user"]


def test_duplicate_names_the_first_row_and_keeps_it() -> None:
    raw = events(
        ("u", "i", "100", "c", "1", ""),
        ("u", "i", "100", "c", "2", ""),  # same key as row 1
        ("u", "i", "100", "view", "", ""),  # other event type: not a duplicate
        ("u", "i", "1970-01-01T00:01:40Z", "c", "", ""),  # same instant as row 1, ISO
    )
    result = validate_events(raw, "ev.csv", now=NOW)
    q = result.quarantine
    assert q[Columns.rule].tolist() == ["duplicate", "duplicate"]
    assert q[Columns.source_row].tolist() == [2, 4]
    assert all("duplicate of row 1" in d for d in q[Columns.detail])
    assert result.valid[Columns.value].iloc[0] == 1.0


def test_no_row_is_lost_and_quarantine_keeps_rule_and_raw_row() -> None:
    rng = np.random.default_rng(7)
    n = 2_000
    stamps = rng.choice(["1000", "2001-02-03T04:05:06+01:00", "never", "-1"], n)
    weights = rng.choice(["", "1", "-2", "x"], n)
    raw = events(
        *zip(
            rng.choice(["a", "b", ""], n),
            rng.choice(["i", "j", "k"], n),
            stamps,
            ["c"] * n,
            [""] * n,
            weights,
            strict=True,
        )
    )
    result = validate_events(raw, "ev.csv", now=NOW)
    assert len(result.valid) + len(result.quarantine) == n
    assert result.counts["valid"] + result.counts["quarantined"] == result.counts["rows"] == n
    assert sum(result.counts[r] for r in EVENT_RULES) == len(result.quarantine)
    q = result.quarantine
    assert q[Columns.source_row].is_monotonic_increasing
    assert set(q[Columns.rule]) <= set(EVENT_RULES)
    first = q.iloc[0]
    original = raw.iloc[int(first[Columns.source_row]) - 1]
    decoded = json.loads(first[RAW])
    assert decoded[Columns.timestamp] == original[Columns.timestamp]
    assert decoded[Columns.weight] == original[Columns.weight]


def test_already_typed_and_mixed_inputs() -> None:
    raw = pd.DataFrame(
        {
            Columns.user: [1, 2, 3, 4],
            Columns.item: [10.0, 20.0, 30.0, 40.0],
            Columns.timestamp: pd.Series(
                [
                    964982703,
                    "2021-05-05T10:00:00-05:00",
                    datetime(2022, 1, 1, 12, tzinfo=UTC),
                    pd.Timestamp("2023-01-01"),
                ],
                dtype=object,
            ),
            Columns.value: [1.0, 2.0, np.nan, 4.0],
        }
    )
    result = validate_events(raw, "typed", now=NOW)
    valid = result.valid
    assert valid[Columns.user].tolist() == ["1", "2", "3", "4"]
    assert valid[Columns.item].tolist() == ["10", "20", "30", "40"]
    assert valid[Columns.timestamp].tolist() == [
        pd.Timestamp("2000-07-30 18:45:03"),
        pd.Timestamp("2021-05-05 15:00:00"),
        pd.Timestamp("2022-01-01 12:00:00"),
        pd.Timestamp("2023-01-01"),
    ]
    tz_aware = raw.assign(
        **{Columns.timestamp: pd.to_datetime(["2020-01-01T05:00:00+05:00"] * 4, utc=True)}
    )
    assert (
        validate_events(tz_aware, "tz", now=NOW).valid[Columns.timestamp]
        == pd.Timestamp("2020-01-01")
    ).all()


def test_missing_required_column_names_origin_and_column() -> None:
    raw = events(("u", "i", "1", "c", "", "")).drop(columns=[Columns.timestamp])
    with pytest.raises(DataSourceError, match=r"ev\.csv.*timestamp"):
        validate_events(raw, "ev.csv")


def test_validate_items_keeps_last_duplicate_and_quarantines_bad_rows() -> None:
    raw = pd.DataFrame(
        {
            Columns.item: ["1", "2", "1", None, "3"],
            Columns.title: ["old", "two", "new", "x", "three"],
            Columns.price: ["1.5", "cheap", "2", "", "-1"],
            Columns.tags: [" A | b ||c|", None, "x|y", "", "z"],
        }
    )
    result = validate_items(raw, "items.csv")
    assert list(result.valid.columns) == list(ITEM_COLUMNS)
    assert result.valid[Columns.item].tolist() == ["1"]
    assert result.valid[Columns.title].tolist() == ["new"]
    assert result.valid[Columns.price].tolist() == [2.0]
    q = result.quarantine
    assert q[Columns.rule].tolist() == ["duplicate", "bad_price", "missing_item", "bad_price"]
    assert "repeated at row 3" in q[Columns.detail].iloc[0]
    assert "'cheap'" in q[Columns.detail].iloc[1]
    assert len(result.valid) + len(q) == len(raw)
    assert set(result.counts) == {"rows", "valid", "quarantined", *ITEM_RULES}


def test_item_tags_are_normalised() -> None:
    raw = pd.DataFrame({Columns.item: ["1", "2"], Columns.tags: [" A | b ||c|", "  "]})
    tags = validate_items(raw, "items.csv").valid[Columns.tags].tolist()
    assert tags == ["A|b|c", None]
