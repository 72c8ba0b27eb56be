"""Hostile and odd input at ingest (issue 12, cases 13-16 and 19): each is quarantined with a
reason that says what is wrong, or stopped with one clear line; nothing valid is lost."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from recops.cli_support import exit_on_error
from recops.columns import Columns
from recops.data.ingest import IngestSettings, rule_table, run_ingest
from recops.data.sources.events import EventsFileSource
from recops.data.sources.synthetic import SyntheticSource
from recops.data.store import BatchReport, EventStore
from recops.data.validation import ValidationSettings, validate_events, validate_items
from recops.errors import DataSourceError

NOW = pd.Timestamp("2024-06-01")
MAPPING = {"user": "user", "item": "item", "timestamp": "ts"}


def frame(users: list[object], items: list[object], stamps: list[object] | None = None):
    n = len(users)
    return pd.DataFrame(
        {
            Columns.user: users,
            Columns.item: items,
            Columns.timestamp: stamps or [str(1_700_000_000 + i) for i in range(n)],
            Columns.source_row: np.arange(1, n + 1),
        }
    )


def ingest(path: Path, tmp_path: Path, settings: IngestSettings | None = None):
    return run_ingest(
        EventsFileSource(str(path), MAPPING),
        "shop",
        tmp_path / "store.duckdb",
        tmp_path / "snapshot",
        console=Console(file=io.StringIO()),
        settings=settings,
    )


# ------------------------------------------------------------------ 13: null tokens


@pytest.mark.parametrize("token", ["NaN", "nan", "null", "None", "NA", "", "  "])
def test_null_tokens_are_missing_ids(token: str) -> None:
    result = validate_events(frame(["u1", token, "u2"], ["i1", "i1", token]), "ev.csv", now=NOW)
    assert result.valid[Columns.user].tolist() == ["u1"]
    assert result.quarantine[Columns.rule].tolist() == ["missing_user", "missing_item"]
    items = validate_items(pd.DataFrame({Columns.item: ["i1", token]}), "items.csv")
    assert items.quarantine[Columns.rule].tolist() == ["missing_item"]


def test_null_tokens_are_configurable() -> None:
    settings = ValidationSettings(null_tokens=frozenset({"-"}))
    result = validate_events(frame(["-", "NA"], ["i1", "i1"]), "ev.csv", NOW, settings)
    assert result.valid[Columns.user].tolist() == ["NA"]  # no longer a null token
    assert result.quarantine[Columns.rule].tolist() == ["missing_user"]


# ------------------------------------------------------------------ 14: float ids


def test_float_ids_have_one_spelling_and_unsafe_floats_are_quarantined(tmp_path: Path) -> None:
    floats = tmp_path / "floats.parquet"
    pd.DataFrame(
        {"user": [1.0, 2.0, 2.0**60, 1.5, np.nan], "item": [7.0] * 5, "ts": [1_700_000_000] * 5}
    ).to_parquet(floats)
    ints = tmp_path / "ints.parquet"
    pd.DataFrame({"user": [1, 3], "item": [7, 7], "ts": [1_700_000_000, 1_700_000_001]}).to_parquet(
        ints
    )
    first = ingest(floats, tmp_path)
    assert first.batch.rule_counts == {"missing_user": 1, "bad_id": 2}
    second = ingest(ints, tmp_path)
    assert second.batch.n_inserted == 1 and second.batch.n_already_present == 1
    with EventStore(tmp_path / "store.duckdb") as store:
        users = store.con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()
        details = store.quarantine_rows()[Columns.detail].tolist()
    assert [u for (u,) in users] == ["1", "2", "3"]
    assert any("1.152921504606847e+18" in d and "2**53" in d for d in details)
    assert any("'1.5' is a float that is not a whole number" in d for d in details)


# ------------------------------------------------------------------ 15: idempotent quarantine


def test_reingesting_a_file_does_not_repeat_its_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text("user,item,ts\nu1,i1,1700000000\n,i2,1700000000\nu2,i2,never\n")
    counts = []
    for _ in range(3):
        report = ingest(path, tmp_path)
        assert report.batch.n_quarantined == 2
        with EventStore(tmp_path / "store.duckdb") as store:
            counts.append(store.counts("shop")["quarantined"])
    assert counts == [2, 2, 2]


# ------------------------------------------------------------------ 16: future timestamps


@pytest.mark.parametrize("stamp", ["2999-01-01", "2999-01-01T00:00:00Z", "32472144000"])
def test_far_future_timestamp_is_said_to_be_in_the_future(stamp: str) -> None:
    result = validate_events(frame(["u1", "u2"], ["i1", "i1"], ["1700000000", stamp]), "e", NOW)
    detail = result.quarantine[Columns.detail].tolist()
    assert result.quarantine[Columns.rule].tolist() == ["bad_timestamp"]
    assert "in the future" in detail[0] and "not epoch seconds" not in detail[0]


def test_future_tolerance_is_configurable() -> None:
    soon = "2024-06-03T00:00:00"  # two days after NOW
    strict = validate_events(frame(["u"], ["i"], [soon]), "e", NOW)
    assert "more than 1 day after" in strict.quarantine[Columns.detail].iloc[0]
    lenient = ValidationSettings.from_config({"future_tolerance_days": 3})
    assert len(validate_events(frame(["u"], ["i"], [soon]), "e", NOW, lenient).valid) == 1


def test_year_1200_is_before_1970() -> None:
    result = validate_events(frame(["u"], ["i"], ["1200-01-01"]), "e", NOW)
    assert "before 1970" in result.quarantine[Columns.detail].iloc[0]


# ------------------------------------------------------------------ 19: rich markup in user text


def test_markup_in_a_header_gives_the_column_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ev.csv"
    path.write_text("[/bold],item,ts\nu1,i1,1700000000\n")
    with pytest.raises(DataSourceError, match=r"'user' \(for user\) not found") as caught:
        ingest(path, tmp_path)
    with pytest.raises(SystemExit), exit_on_error():
        raise caught.value
    assert "[/bold]" in capsys.readouterr().err


def test_rule_table_prints_user_text_literally() -> None:
    report = BatchReport(1, "shop[/bold]:x:", "f", "h", "", "", 2, 1, 1, 0, 1, "ok")
    report.rule_counts = {"bad_value": 1}
    out = io.StringIO()
    Console(file=out, width=120, emoji=True).print(rule_table(report))
    assert "shop[/bold]:x:" in out.getvalue()


# ------------------------------------------------------------------ 16.5: origin logged once


def test_synthetic_parameters_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = SyntheticSource(n_users=50, n_items=20, n_events=500, n_categories=4)
    recops = logging.getLogger("recops")
    recops.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="recops"):
            run_ingest(
                source,
                "syn",
                tmp_path / "store.duckdb",
                tmp_path / "snapshot",
                console=Console(file=io.StringIO()),
            )
    finally:
        recops.removeHandler(caplog.handler)
    records = {id(r): r.getMessage() for r in caplog.records}  # the handler may see one twice
    assert sum("n_categories=4" in m for m in records.values()) == 1
