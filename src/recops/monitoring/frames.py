"""Where the reference and current events of a drift check come from.

A side is a window over a base (the event store, or a snapshot for the DVC stage), a range of
ingest batches (the worker: what a model was trained on vs what arrived since), a snapshot
parquet, or a user's events file read through the configured column mapping and validated like
an ingest (quarantined rows are left out).

Store and snapshot sides come as Arrow and keep the id and event-type columns
dictionary-encoded (pandas categoricals): 20M events cost integer codes plus each distinct id
once, not a Python string per event. Windows are filtered in DuckDB/Arrow before pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from recops.columns import Columns
from recops.data.sources.events import EventsFileSource
from recops.data.validation import validate_events, validate_items
from recops.errors import DataSourceError
from recops.features.events import SNAPSHOT_DICTIONARY_COLUMNS, dictionary_encode
from recops.monitoring.windows import Window, is_window, parse_window

EVENT_FIELDS = [Columns.user, Columns.item, Columns.timestamp, Columns.event_type]
ITEM_FIELDS = [Columns.item, Columns.category, Columns.price]
SNAPSHOT_EVENTS, SNAPSHOT_ITEMS = "events.parquet", "items.parquet"
_CODED = (Columns.user, Columns.item, Columns.event_type)


def _arrow(result: duckdb.DuckDBPyConnection) -> pa.Table:
    """A query result as an Arrow table (DuckDB 2 names it to_arrow_table)."""
    name = "to_arrow_table" if hasattr(result, "to_arrow_table") else "fetch_arrow_table"
    table: pa.Table = getattr(result, name)()
    return table


def coded_frame(table: pa.Table) -> pd.DataFrame:
    """Events from Arrow with user/item/event type as categoricals (see the module docstring).

    A column read as dictionaries keeps them (unified once); any other is encoded as one chunk:
    encoding per chunk leaves a dictionary per chunk, and unifying those in the pandas
    conversion costs more than the encoding itself."""
    for name in _CODED:
        if name in table.column_names:
            column = table.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.unify_dictionaries()
            else:
                column = dictionary_encode(column)
            table = table.set_column(table.column_names.index(name), name, column)
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _parquet_events(path: Path) -> ds.Dataset:
    """A snapshot's events, read as the features stage reads them (`SNAPSHOT_DICTIONARY_COLUMNS`
    as dictionaries)."""
    options = ds.ParquetReadOptions(dictionary_columns=SNAPSHOT_DICTIONARY_COLUMNS)
    return ds.dataset(path, format=ds.ParquetFileFormat(read_options=options))


@dataclass
class EventWindow:
    """The events of one side of a check, with the item metadata to look their items up in."""

    label: str
    events: pd.DataFrame
    items: pd.DataFrame | None = None

    def describe(self) -> dict[str, Any]:
        ts = self.events[Columns.timestamp]
        return {
            "spec": self.label,
            "n_events": len(self.events),
            "n_users": int(self.events[Columns.user].nunique()),
            "n_items": int(self.events[Columns.item].nunique()),
            "start": ts.min().isoformat() if len(ts) else None,
            "end": ts.max().isoformat() if len(ts) else None,
        }


class StoreBase:
    """Read-only view of one dataset in the DuckDB event store."""

    def __init__(self, db_path: Path, dataset: str) -> None:
        if not Path(db_path).exists():
            raise DataSourceError(f"{db_path}: no event store; run the ingest stage first")
        self.db_path, self.dataset = Path(db_path), dataset

    def _query(self, sql: str, params: list[Any], coded: bool = True) -> pd.DataFrame:
        try:
            with duckdb.connect(str(self.db_path), read_only=True) as con:
                result = con.execute(sql, params)
                return coded_frame(_arrow(result)) if coded else result.df()
        except duckdb.IOException as exc:  # a worker in mid-cycle holds the write lock
            raise DataSourceError(f"{self.db_path}: cannot open the event store ({exc})") from exc

    def window(self, window: Window) -> EventWindow:
        span = self._query(
            f"SELECT min({Columns.timestamp}) AS first, max({Columns.timestamp}) AS last "
            f"FROM events WHERE {Columns.dataset} = ?",
            [self.dataset],
            coded=False,
        )
        first, last = pd.to_datetime(span["first"]), pd.to_datetime(span["last"])
        if len(first) == 0 or first.isna().all():
            raise DataSourceError(f"{self.db_path}: dataset {self.dataset!r} has no events")
        start, end = window.bounds(first.iloc[0], last.iloc[0])
        events = self._query(
            f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE {Columns.dataset} = ? "
            f"AND {Columns.timestamp} >= ? AND {Columns.timestamp} < ?",
            [self.dataset, start.floor("us").to_pydatetime(), end.ceil("us").to_pydatetime()],
        )
        return EventWindow(window.spec, events, self.items())

    def items(self) -> pd.DataFrame:
        return self._query(
            f"SELECT {', '.join(ITEM_FIELDS)} FROM items WHERE {Columns.dataset} = ?",
            [self.dataset],
            coded=False,
        )


class SnapshotBase:
    """The events of an exported snapshot (what the DVC stage depends on); each window reads
    only its rows (a filter pushed into the parquet scan)."""

    def __init__(self, snapshot: Path) -> None:
        self.events_path = _snapshot_events(Path(snapshot))
        self.label = str(snapshot)
        self.items = _snapshot_items(self.events_path)
        self.dataset = _parquet_events(self.events_path)
        stamps = self.dataset.to_table(columns=[Columns.timestamp]).column(0)
        if len(stamps) == 0:
            raise DataSourceError(f"{self.label}: the snapshot has no events")
        bounds = pc.min_max(stamps)
        self.first = pd.Timestamp(bounds["min"].as_py())
        self.last = pd.Timestamp(bounds["max"].as_py())

    def window(self, window: Window) -> EventWindow:
        start, end = window.bounds(self.first, self.last)
        ts = ds.field(Columns.timestamp)
        inside = (ts >= pa.scalar(start.to_datetime64(), pa.timestamp("ns"))) & (
            ts < pa.scalar(end.to_datetime64(), pa.timestamp("ns"))
        )
        table = self.dataset.to_table(columns=EVENT_FIELDS, filter=inside)
        return EventWindow(window.spec, coded_frame(table), self.items)


def _snapshot_events(path: Path) -> Path:
    events_path = path / SNAPSHOT_EVENTS if path.is_dir() else path
    if not events_path.exists():
        raise DataSourceError(f"{path}: no snapshot here (no {SNAPSHOT_EVENTS})")
    return events_path


def _snapshot_items(events_path: Path) -> pd.DataFrame | None:
    items_path = events_path.with_name(SNAPSHOT_ITEMS)
    return pd.read_parquet(items_path, columns=ITEM_FIELDS) if items_path.exists() else None


def read_snapshot(path: Path) -> EventWindow:
    """A snapshot folder (events.parquet + items.parquet) or its events parquet file."""
    events_path = _snapshot_events(Path(path))
    table = _parquet_events(events_path).to_table(columns=EVENT_FIELDS)
    return EventWindow(str(path), coded_frame(table), _snapshot_items(events_path))


def is_snapshot(path: Path) -> bool:
    """A folder with events.parquet, or a parquet file next to a snapshot manifest."""
    if path.is_dir():
        return (path / SNAPSHOT_EVENTS).exists()
    return path.suffix == ".parquet" and (path.parent / "manifest.json").exists()


def read_events_file(path: Path, mapping: Mapping[str, Any]) -> EventWindow:
    """A user's events file through the column mapping; quarantined rows are left out."""
    source = EventsFileSource(path=str(path), **dict(mapping))
    raw = source.load()
    events = validate_events(raw.events, raw.origin).valid
    if events.empty:
        raise DataSourceError(f"{path}: no valid events (every row failed validation)")
    items = None
    if raw.items is not None:
        items = validate_items(raw.items, f"{raw.origin} (items)").valid[ITEM_FIELDS]
    return EventWindow(str(path), events[EVENT_FIELDS], items)


def load_side(
    spec: str, base: StoreBase | SnapshotBase, file_mapping: Mapping[str, Any]
) -> EventWindow:
    """Resolve a `--reference`/`--current` argument: a window over `base`, else a path."""
    path = Path(spec)
    if path.exists():
        side = read_snapshot(path) if is_snapshot(path) else read_events_file(path, file_mapping)
        return with_base_items(side, base)
    if is_window(spec):
        return base.window(parse_window(spec))
    raise DataSourceError(f"{spec}: neither a window (last:14d, first:42d, a..b) nor a file")


def with_base_items(side: EventWindow, base: StoreBase | SnapshotBase) -> EventWindow:
    """Item metadata of `side`, completed with the base's for items the side does not describe."""
    base_items = base.items() if isinstance(base, StoreBase) else base.items
    frames = [f for f in (side.items, base_items) if f is not None and not f.empty]
    if not frames:
        return side
    merged = pd.concat(frames, ignore_index=True).drop_duplicates(Columns.item, keep="first")
    return EventWindow(side.label, side.events, merged)


def batch_window(
    con: duckdb.DuckDBPyConnection, dataset: str, after: int, upto: int, label: str
) -> EventWindow:
    """Events of ingest batches `after < batch_id <= upto` (the worker's sides: what a model
    was trained on, and what arrived since), on an open store connection."""
    events = coded_frame(
        _arrow(
            con.execute(
                f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE {Columns.dataset} = ? "
                f"AND {Columns.batch} > ? AND {Columns.batch} <= ?",
                [dataset, after, upto],
            )
        )
    )
    items = con.execute(
        f"SELECT {', '.join(ITEM_FIELDS)} FROM items WHERE {Columns.dataset} = ?", [dataset]
    ).df()
    return EventWindow(label, events, items)


def last_batch(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    """The newest successfully ingested batch of `dataset` (0 when none)."""
    rows = con.execute(
        f"SELECT coalesce(max({Columns.batch}), 0) FROM batches "
        f"WHERE {Columns.dataset} = ? AND status = 'ok'",
        [dataset],
    ).fetchall()
    return int(rows[0][0])
