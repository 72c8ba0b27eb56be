"""EventsFileSource: column mapping, raw reads, clear errors naming the file and column."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from recops.columns import Columns
from recops.data.sources.events import EventsFileSource
from recops.data.validation import validate_events, validate_items
from recops.errors import ConfigError, DataSourceError

MAPPING = {"user": "uid", "item": "sku", "timestamp": "ts", "rating": "stars", "weight": "w"}
NOW = pd.Timestamp("2024-06-01")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    return write(
        tmp_path / "events.csv",
        "uid,sku,ts,stars,w,extra\n"
        "u1,i1,964982703,4.5,,x\n"
        "u1,i2,2020-01-01T02:00:00+02:00,,2,y\n"
        "u2,i1,2020-01-01 00:00:00,3,,z\n"
        "u2,i3,yesterday,,,z\n"
        "u3,i1,1000,,-1,z\n",
    )


def test_reads_mapped_columns_raw_as_strings(events_csv: Path) -> None:
    raw = EventsFileSource(str(events_csv), MAPPING).load()
    ev = raw.events
    assert list(ev.columns) == [
        Columns.user,
        Columns.item,
        Columns.timestamp,
        Columns.event_type,
        Columns.value,
        Columns.weight,
        Columns.source_row,
    ]
    assert ev[Columns.timestamp].tolist()[:2] == ["964982703", "2020-01-01T02:00:00+02:00"]
    assert ev[Columns.value].iloc[1] is None  # "" becomes missing
    assert (ev[Columns.event_type] == "interaction").all()
    assert ev[Columns.source_row].tolist() == [1, 2, 3, 4, 5]
    assert raw.items is None and raw.origin == str(events_csv)
    assert raw.content_hash == hashlib.sha256(events_csv.read_bytes()).hexdigest()


def test_epoch_and_iso_timestamps_in_one_file_and_bad_rows_quarantined(events_csv: Path) -> None:
    raw = EventsFileSource(str(events_csv), MAPPING, default_event_type="purchase").load()
    result = validate_events(raw.events, raw.origin, now=NOW)
    assert result.valid[Columns.timestamp].tolist() == [
        pd.Timestamp("2000-07-30 18:45:03"),
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-01-01"),
    ]
    q = result.quarantine
    assert q[Columns.rule].tolist() == ["bad_timestamp", "negative_weight"]
    assert q[Columns.source_row].tolist() == [4, 5]
    assert "'yesterday'" in q[Columns.detail].iloc[0]
    assert (result.valid[Columns.event_type] == "purchase").all()


def test_missing_column_error_names_file_column_and_available(events_csv: Path) -> None:
    source = EventsFileSource(str(events_csv), {**MAPPING, "timestamp": "time"})
    with pytest.raises(DataSourceError) as err:
        source.load()
    message = str(err.value)
    assert str(events_csv) in message and "'time'" in message and "for timestamp" in message
    assert "available columns" in message and "'uid'" in message


@pytest.mark.parametrize(
    ("content", "match"),
    [("", "file is empty"), ("uid,sku,ts\n", "no rows")],
)
def test_empty_file(tmp_path: Path, content: str, match: str) -> None:
    path = write(tmp_path / "e.csv", content)
    with pytest.raises(DataSourceError, match=match) as err:
        EventsFileSource(str(path), {"user": "uid", "item": "sku", "timestamp": "ts"}).load()
    assert str(path) in str(err.value)


def test_unreadable_files(tmp_path: Path) -> None:
    mapping = {"user": "u", "item": "i", "timestamp": "t"}
    with pytest.raises(DataSourceError, match="file not found"):
        EventsFileSource(str(tmp_path / "nope.csv"), mapping).load()
    with pytest.raises(DataSourceError, match="not a regular file"):
        EventsFileSource(str(tmp_path), mapping, format="csv").load()
    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataSourceError, match=r"broken\.parquet: cannot read as Parquet"):
        EventsFileSource(str(garbage), mapping).load()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("u,i,t\nj\xe9r\xf4me,1,2\n".encode("latin-1"))
    with pytest.raises(DataSourceError, match=r"latin\.csv: cannot read as CSV"):
        EventsFileSource(str(latin), mapping).load()
    with pytest.raises(DataSourceError, match="cannot tell the format"):
        EventsFileSource(str(write(tmp_path / "e.json", "{}")), mapping).load()


def test_parquet_typed_columns_and_millisecond_epochs(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user": [1, 2, 3], "item": [7, 8, 9], "ms": [964982703123, 1577836800000, -1]}
    )
    frame.to_parquet(tmp_path / "e.parquet")
    source = EventsFileSource(
        str(tmp_path / "e.parquet"),
        {"user": "user", "item": "item", "timestamp": "ms"},
        timestamp_unit="ms",
    )
    result = validate_events(source.load().events, "e.parquet", now=NOW)
    assert result.valid[Columns.user].tolist() == ["1", "2"]
    assert result.valid[Columns.timestamp].tolist() == [
        pd.Timestamp("2000-07-30 18:45:03.123"),
        pd.Timestamp("2020-01-01"),
    ]
    assert result.quarantine[Columns.rule].tolist() == ["bad_timestamp"]


def test_millisecond_strings_mixed_with_garbage_are_quarantined(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "u,i,t\na,1,1577836800000\nb,2,soon\n")
    source = EventsFileSource(
        str(path), {"user": "u", "item": "i", "timestamp": "t"}, timestamp_unit="ms"
    )
    result = validate_events(source.load().events, "e.csv", now=NOW)
    assert result.valid[Columns.timestamp].tolist() == [pd.Timestamp("2020-01-01")]
    assert "'soon'" in result.quarantine[Columns.detail].iloc[0]


def test_items_file_with_its_own_mapping(tmp_path: Path, events_csv: Path) -> None:
    items = write(
        tmp_path / "catalog.tsv",
        "product\tname\tdept\tcost\tlabels\ni1\tWidget\ttools\t9.5\ta|b\ni2\tGadget\t\tn/a\t\n",
    )
    source = EventsFileSource(
        str(events_csv),
        MAPPING,
        items={
            "path": str(items),
            "columns": {
                "item": "product",
                "title": "name",
                "category": "dept",
                "price": "cost",
                "tags": "labels",
            },
        },
    )
    raw = source.load()
    assert raw.items is not None
    assert raw.items[Columns.item].tolist() == ["i1", "i2"]
    assert raw.items[Columns.brand].isna().all()
    assert str(items) in raw.origin
    result = validate_items(raw.items, raw.origin)
    assert result.valid[Columns.title].tolist() == ["Widget"]
    assert result.quarantine[Columns.rule].tolist() == ["bad_price"]
    both = hashlib.sha256(events_csv.read_bytes() + items.read_bytes()).hexdigest()
    assert raw.content_hash == both


def test_items_missing_column_names_the_items_file(tmp_path: Path, events_csv: Path) -> None:
    items = write(tmp_path / "catalog.csv", "product,name\ni1,Widget\n")
    source = EventsFileSource(
        str(events_csv),
        MAPPING,
        items={"path": str(items), "columns": {"item": "product", "title": "title"}},
    )
    with pytest.raises(DataSourceError, match=r"catalog\.csv: column\(s\) 'title'"):
        source.load()


def test_bad_config_is_a_config_error(events_csv: Path) -> None:
    with pytest.raises(ConfigError, match="unknown column key"):
        EventsFileSource(str(events_csv), {**MAPPING, "usr": "x"})
    with pytest.raises(ConfigError, match=r"lacks required key\(s\) \['timestamp'\]"):
        EventsFileSource(str(events_csv), {"user": "uid", "item": "sku"})
    with pytest.raises(ConfigError, match="timestamp_unit"):
        EventsFileSource(str(events_csv), MAPPING, timestamp_unit="us")


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffu,i,t\na,1,2\n".encode())
    raw = EventsFileSource(str(path), {"user": "u", "item": "i", "timestamp": "t"}).load()
    assert raw.events[Columns.user].tolist() == ["a"]


def test_items_without_path_means_no_items(events_csv: Path) -> None:
    config_default = {"path": None, "format": "auto", "columns": {"item": "item_id"}}
    raw = EventsFileSource(str(events_csv), MAPPING, items=config_default).load()
    assert raw.items is None
