"""A user's own events file (CSV or Parquet), mapped onto canonical columns by a column mapping.

Values are returned as read (CSV cells as strings, "" as missing) so that validation sees, and
can quarantine, exactly what the file holds. The one exception is ``timestamp_unit="ms"``:
numeric epoch milliseconds are converted to datetimes here, because validation reads bare
numbers as epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api import types as ptypes

from recops.columns import Columns
from recops.data.hashing import file_sha256
from recops.data.parsing import to_number
from recops.data.sources.base import RawData, RawStream
from recops.errors import ConfigError, DataSourceError

EVENT_KEYS = ("user", "item", "timestamp", "event_type", "rating", "weight")
REQUIRED_EVENT_KEYS = ("user", "item", "timestamp")
ITEM_KEYS = ("item", "title", "category", "brand", "price", "tags")
EVENT_TARGETS = {
    "user": Columns.user,
    "item": Columns.item,
    "timestamp": Columns.timestamp,
    "event_type": Columns.event_type,
    "rating": Columns.value,
    "weight": Columns.weight,
}
ITEM_TARGETS = {key: getattr(Columns, key) for key in ITEM_KEYS}
_FORMATS = ("csv", "tsv", "parquet")
_MAX_ABS_MS = 9e15  # pandas datetime64[ns] spans about +-9.2e15 ms around 1970


def detect_format(path: Path, fmt: str) -> str:
    """``fmt`` itself, or for "auto" the format implied by the file name (compression allowed)."""
    if fmt != "auto":
        if fmt not in _FORMATS:
            raise ConfigError(
                f"{path}: format must be one of auto, {', '.join(_FORMATS)}; got {fmt!r}"
            )
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for fmt_name, exts in (
        ("parquet", (".parquet", ".pq")),
        ("csv", (".csv",)),
        ("tsv", (".tsv",)),
    ):
        if any(ext in suffixes for ext in exts):
            return fmt_name
    raise DataSourceError(
        f"{path}: cannot tell the format from the extension; set format to csv, tsv or parquet"
    )


def _check_mapping(
    mapping: Mapping[str, Any] | None, keys: tuple[str, ...], required: tuple[str, ...], what: str
) -> dict[str, str]:
    """The non-empty entries of a column mapping, after checking its keys."""
    given = dict(mapping or {})
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise ConfigError(f"{what}: unknown column key(s) {unknown}; allowed: {list(keys)}")
    absent = [k for k in required if not given.get(k)]
    if absent:
        raise ConfigError(f"{what}: column mapping lacks required key(s) {absent}")
    return {k: str(v) for k, v in given.items() if v not in (None, "")}


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataSourceError(f"{path}: file not found")
    if not path.is_file():
        raise DataSourceError(f"{path}: is not a regular file")


def _csv_header(path: Path, sep: str) -> list[str]:
    try:
        header = pd.read_csv(path, sep=sep, nrows=0, dtype=str, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as exc:
        raise DataSourceError(f"{path}: file is empty (no header, no rows)") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataSourceError(f"{path}: cannot read as CSV: {exc}") from exc
    return [str(c) for c in header.columns]


def _parquet_header(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise DataSourceError(f"{path}: cannot read as Parquet: {exc}") from exc


def _require_columns(path: Path, available: list[str], mapping: dict[str, str]) -> None:
    missing = {key: col for key, col in mapping.items() if col not in available}
    if missing:
        wanted = ", ".join(f"{col!r} (for {key})" for key, col in missing.items())
        raise DataSourceError(
            f"{path}: column(s) {wanted} not found; available columns: {available}"
        )


def _read_csv(path: Path, sep: str, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(
            path,
            sep=sep,
            usecols=columns,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",  # tolerate a byte-order mark from spreadsheet exports
            chunksize=chunk_rows,
        ) as reader:
            for frame in reader:
                for col in frame.columns:  # "" is the only missing marker in a string read
                    frame[col] = frame[col].where(frame[col].ne(""), None)
                yield frame
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataSourceError(f"{path}: cannot read as CSV: {exc}") from exc


def _read_parquet(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataSourceError(f"{path}: cannot read as Parquet: {exc}") from exc


class MappedFile:
    """The mapped columns of one CSV/TSV/Parquet file, renamed to canonical names; raw values.

    Construction checks the file, its format, its header and that it has rows, raising
    DataSourceError naming the file (and, for a missing mapped column, the available ones).
    """

    def __init__(
        self, path: Path, fmt: str, mapping: dict[str, str], targets: dict[str, str]
    ) -> None:
        _check_file(path)
        self.path, self.fmt = path, detect_format(path, fmt)
        self.sep = "\t" if self.fmt == "tsv" else ","
        header = _parquet_header(path) if self.fmt == "parquet" else _csv_header(path, self.sep)
        _require_columns(path, header, mapping)
        self.used = sorted(set(mapping.values()), key=header.index)
        self.mapping, self.targets = mapping, targets
        self.n_rows = self._parquet_rows() if self.fmt == "parquet" else None
        if self.n_rows == 0 or (self.n_rows is None and next(self.chunks(1), None) is None):
            raise DataSourceError(f"{path}: file has a header but no rows")

    def _parquet_rows(self) -> int:
        try:
            return int(pq.read_metadata(self.path).num_rows)
        except (OSError, pa.ArrowException) as exc:
            raise DataSourceError(f"{self.path}: cannot read as Parquet: {exc}") from exc

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Consecutive chunks of at most `chunk_rows` rows (a fresh read each call)."""
        raw = (
            _read_parquet(self.path, self.used, chunk_rows)
            if self.fmt == "parquet"
            else _read_csv(self.path, self.sep, self.used, chunk_rows)
        )
        for frame in raw:
            if len(frame):
                yield pd.DataFrame({self.targets[k]: frame[c] for k, c in self.mapping.items()})

    def read(self) -> pd.DataFrame:
        parts = list(self.chunks(1 << 62))
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def read_mapped(
    path: Path, fmt: str, mapping: dict[str, str], targets: dict[str, str]
) -> pd.DataFrame:
    """The whole of a `MappedFile`."""
    return MappedFile(path, fmt, mapping, targets).read()


def epoch_ms_to_datetime(col: pd.Series) -> pd.Series:
    """Convert numeric epoch-millisecond cells to datetimes; leave other cells as they are.

    The result is datetime64 when every present cell converted, otherwise an object column
    mixing Timestamps and the unconverted raw values (validation reports those).
    """
    if ptypes.is_datetime64_any_dtype(col):
        return col
    num = to_number(col)
    ok = num.notna() & num.abs().lt(_MAX_ABS_MS)
    converted = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]")
    converted[ok] = pd.to_datetime(num[ok], unit="ms")
    if not (col.notna() & ~ok).any():
        return converted
    mixed = col.astype(object).copy()
    mixed[ok] = converted[ok].astype(object)
    return mixed


class EventsFileSource:
    """Events (and optionally items) from the user's CSV/TSV/Parquet files.

    ``columns`` maps the keys user, item, timestamp (required) and event_type, rating, weight
    (optional, None to skip) to the file's column names. ``items``, if given, is
    ``{path, format, columns: {item, title, category, brand, price, tags}}`` (only item required).
    Relative paths are relative to the working directory. ``source_row`` counts data rows from 1
    (the header is not a row).
    """

    def __init__(
        self,
        path: str,
        columns: Mapping[str, Any],
        format: str = "auto",
        timestamp_unit: str = "s",
        default_event_type: str = "interaction",
        items: Mapping[str, Any] | None = None,
        name: str = "events",
    ) -> None:
        if timestamp_unit not in ("s", "ms"):
            raise ConfigError(f"{path}: timestamp_unit must be 's' or 'ms', got {timestamp_unit!r}")
        self.path = Path(path)
        self.columns = _check_mapping(columns, EVENT_KEYS, REQUIRED_EVENT_KEYS, str(path))
        self.format = format
        self.timestamp_unit = timestamp_unit
        self.default_event_type = default_event_type
        # items with no path (the config default) means "no item file"
        self.items = dict(items) if items is not None and items.get("path") else None
        self.items_path: Path | None = None
        self.item_columns: dict[str, str] = {}
        if self.items is not None:
            self.items_path = Path(str(self.items["path"]))
            self.item_columns = _check_mapping(
                self.items.get("columns"), ITEM_KEYS, ("item",), str(self.items_path)
            )
        self.name = name

    def load(self) -> RawData:
        stream = self.stream(1 << 62)
        parts = list(stream.chunks())
        events = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        return RawData(events, stream.items, stream.origin, stream.content_hash)

    def stream(self, chunk_rows: int) -> RawStream:
        """The events in chunks of `chunk_rows` rows; items (small) in full."""
        events = MappedFile(self.path, self.format, self.columns, EVENT_TARGETS)
        items = self._load_items()
        paths = [self.path] + ([self.items_path] if self.items_path else [])
        origin = str(self.path) + (f" (items: {self.items_path})" if self.items_path else "")

        def chunks() -> Iterator[pd.DataFrame]:
            first_row = 1
            for frame in events.chunks(chunk_rows):
                yield self._canonical(frame, first_row)
                first_row += len(frame)

        return RawStream(chunks, items, origin, file_sha256(*paths), events.n_rows, origin)

    def _canonical(self, frame: pd.DataFrame, first_row: int) -> pd.DataFrame:
        n = len(frame)
        if self.timestamp_unit == "ms":
            frame[Columns.timestamp] = epoch_ms_to_datetime(frame[Columns.timestamp])
        if Columns.event_type in frame.columns:
            frame[Columns.event_type] = frame[Columns.event_type].fillna(self.default_event_type)
        else:
            frame[Columns.event_type] = self.default_event_type
        for col in (Columns.value, Columns.weight):
            if col not in frame.columns:
                frame[col] = None
        frame[Columns.source_row] = np.arange(first_row, first_row + n, dtype="int64")
        order = [*EVENT_TARGETS.values(), Columns.source_row]
        return frame[order].reset_index(drop=True)

    def _load_items(self) -> pd.DataFrame | None:
        if self.items_path is None or self.items is None:
            return None
        fmt = str(self.items.get("format") or "auto")
        frame = read_mapped(self.items_path, fmt, self.item_columns, ITEM_TARGETS)
        for col in ITEM_TARGETS.values():
            if col not in frame.columns:
                frame[col] = None
        frame[Columns.source_row] = np.arange(1, len(frame) + 1, dtype="int64")
        return frame[[*ITEM_TARGETS.values(), Columns.source_row]]
