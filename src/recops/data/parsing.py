"""Vectorised conversion of raw columns (strings as read, or already typed) to typed columns.

Shared by validation and the sources. The common path (an all-string or already-typed column)
uses only pandas/numpy vector operations; mixed-type object columns fall back to a per-element
pass, which only happens for hand-built frames.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes

EPOCH = pd.Timestamp("1970-01-01")
_STRING_KINDS = ("string", "empty")


def scalar_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    return str(value).strip()


def arrow_strings(col: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow data of an Arrow-backed string column (`pd.ArrowDtype(pa.string())`), else
    None. Sources hand such columns to validation for big inputs: every string check is then
    an Arrow kernel over the column, with no Python object per cell."""
    dtype = col.dtype
    if isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    ):
        arrow = col.array.__arrow_array__()
        return arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])
    return None


def arrow_series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index, copy=False)


def _arrow_text(arr: pa.ChunkedArray, null_tokens: frozenset[str] = frozenset()) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(arr)
    missing = pc.equal(trimmed, "")
    if null_tokens:
        tokens = pa.array(sorted(null_tokens), pa.string())
        missing = pc.or_(missing, pc.is_in(trimmed, value_set=tokens))
    return pc.if_else(missing, pa.scalar(None, pa.string()), trimmed)


def strip_strings(col: pd.Series) -> pd.Series:
    """All-string column -> stripped strings (object dtype), None for missing/blank.

    Done in Arrow compute kernels: pandas' ``.str.strip`` is a Python loop per element.
    Returns ``col`` itself when nothing needs stripping (the common case for clean files).
    """
    arr = pa.array(col, type=pa.string(), from_pandas=True)
    trimmed = _blank_to_null(pc.utf8_trim_whitespace(arr))
    if trimmed.equals(arr) and col.dtype == object:
        return col
    return pd.Series(trimmed.to_numpy(zero_copy_only=False), index=col.index, dtype=object)


def _blank_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def longer_than(text: pd.Series, limit: int) -> np.ndarray:
    """Boolean mask of strings with more than ``limit`` characters (missing -> False)."""
    arr = pa.array(text, type=pa.string(), from_pandas=True)
    return np.asarray(pc.greater(pc.utf8_length(arr), limit).fill_null(False), dtype=bool)


def as_text(col: pd.Series) -> pd.Series:
    """Stripped strings (object dtype), missing/blank as NA; 1.0-style float ids -> '1'.
    Arrow-backed string columns stay Arrow-backed."""
    if (arr := arrow_strings(col)) is not None:
        return arrow_series(_arrow_text(arr), col.index)
    if ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
        return _numeric_text(col)
    if ptypes.infer_dtype(col, skipna=True) in _STRING_KINDS:
        return strip_strings(col)
    out = col.map(scalar_text, na_action="ignore").astype(object)  # mixed types: rare
    return out.where(out.notna() & out.ne(""), None)


#: Largest integer a float64 holds exactly; float ids beyond it are not trusted.
MAX_EXACT_FLOAT = 2**53
ID_OK, ID_NOT_INTEGER, ID_UNSAFE_FLOAT = 0, 1, 2


def as_id(
    col: pd.Series, null_tokens: frozenset[str] = frozenset()
) -> tuple[pd.Series, np.ndarray]:
    """Ids as stripped strings (None when missing, blank or a null token such as "NaN"), and a
    problem code per row (ID_OK, ID_NOT_INTEGER, ID_UNSAFE_FLOAT).

    Float ids (a Parquet column that went through floats) become integer strings when whole
    and exact (1.0 -> "1", so one id has one spelling whatever file it came from); a
    non-integral float or one beyond 2**53 (not an exact integer) gets a problem code and None.
    """
    codes = np.zeros(len(col), dtype=np.int8)
    if (arr := arrow_strings(col)) is not None:
        return arrow_series(_arrow_text(arr, null_tokens), col.index), codes
    if ptypes.is_float_dtype(col):
        float_text, codes = _float_ids(col.to_numpy(dtype="float64"))
        return pd.Series(float_text, index=col.index, dtype=object), codes
    if col.dtype == object and ptypes.infer_dtype(col, skipna=True) not in _STRING_KINDS:
        floats = col.map(lambda v: isinstance(v, float | np.floating)).to_numpy(dtype=bool)
        if floats.any():
            col = col.copy()
            float_text, float_codes = _float_ids(col[floats].to_numpy(dtype="float64"))
            col[floats], codes[floats] = float_text, float_codes
    text = as_text(col)
    if null_tokens:
        arr = pa.array(text, type=pa.string(), from_pandas=True)
        is_null = np.asarray(
            pc.is_in(arr, value_set=pa.array(sorted(null_tokens), pa.string())).fill_null(False),
            dtype=bool,
        )
        if is_null.any():
            text = text.where(~is_null, None)
    return text, codes


def _float_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = ~np.isnan(values)
    whole = present & np.isfinite(values) & (np.floor(values) == values)
    exact = whole & (np.abs(values) <= MAX_EXACT_FLOAT)
    codes = np.where(
        present & ~whole, ID_NOT_INTEGER, np.where(whole & ~exact, ID_UNSAFE_FLOAT, ID_OK)
    ).astype(np.int8)
    text = np.full(len(values), None, dtype=object)
    text[exact] = values[exact].astype(np.int64).astype(str).astype(object)
    return text, codes


def _numeric_text(col: pd.Series) -> pd.Series:
    if ptypes.is_float_dtype(col):
        present = col.dropna()
        if (present == np.floor(present)).all() and (present.abs() < 2**53).all():
            col = col.astype("Int64")
    text = col.astype("string")
    return text.astype(object).where(text.notna(), None)


def is_blank(col: pd.Series) -> pd.Series:
    """True where a raw cell is missing: NaN/None or an empty/whitespace string."""
    missing = col.isna()
    if missing.all() or not (col.dtype == object or ptypes.is_string_dtype(col)):
        return missing
    kind = ptypes.infer_dtype(col, skipna=True)
    if kind in _STRING_KINDS:
        return strip_strings(col).isna()
    if kind in ("mixed", "mixed-integer"):
        return as_text(col).isna()
    return missing


def as_float(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(floats with NaN for missing, mask of present-but-non-numeric or non-finite cells)."""
    if ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
        num = col.astype("float64")
        return num, pd.Series(np.isinf(num.to_numpy()), index=col.index)
    missing = is_blank(col)
    if missing.all():
        return pd.Series(np.nan, index=col.index), pd.Series(False, index=col.index)
    num = to_number(col.where(~missing, None))
    bad = ~missing & (num.isna() | np.isinf(num))
    return num.where(~missing, np.nan), bad


_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def to_number(col: pd.Series) -> pd.Series:
    """float64, NaN where a cell is not a number (surrounding whitespace allowed).

    String columns go through Arrow's cast (C++, ~10x faster than ``pd.to_numeric``); when
    some cells are not numbers, only the cells that look numeric are cast.
    """
    if ptypes.infer_dtype(col, skipna=True) != "string":
        return pd.to_numeric(col, errors="coerce").astype("float64")
    arr = pc.utf8_trim_whitespace(pa.array(col, type=pa.string(), from_pandas=True))
    try:
        return pd.Series(_float_array(pc.cast(arr, pa.float64())), index=col.index)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    looks_numeric = np.asarray(pc.match_substring_regex(arr, _NUMBER).fill_null(False), bool)
    out = np.full(len(col), np.nan)
    out[looks_numeric] = _float_array(pc.cast(arr.filter(looks_numeric), pa.float64()))
    return pd.Series(out, index=col.index)


def _float_array(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")


# ---------------------------------------------------------------- timestamps

TS_OK, TS_UNPARSEABLE, TS_BEFORE_1970, TS_FUTURE = 0, 1, 2, 3


def _epoch_seconds(num: pd.Series, max_epoch: float) -> tuple[pd.Series, pd.Series]:
    """Numeric epoch seconds -> (datetimes, problem codes); out-of-range values never convert."""
    values = num.to_numpy(dtype="float64")
    problem = np.select(
        [~np.isfinite(values), values < 0, values > max_epoch],
        [TS_UNPARSEABLE, TS_BEFORE_1970, TS_FUTURE],
        TS_OK,
    )
    ok = problem == TS_OK
    nanos = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)  # = NaT
    whole = np.floor(values[ok])
    nanos[ok] = whole.astype(np.int64) * 10**9 + np.round((values[ok] - whole) * 1e9).astype(
        np.int64
    )
    parsed = pd.Series(nanos.view("datetime64[ns]"), index=num.index)
    return parsed, pd.Series(problem, index=num.index)


# a UTC offset or "Z" after a time of day (a date-only "2020-01-01" must not match "-01")
_TZ_SUFFIX = r"\d{2}:?\d{2}(?::?\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


_ISO = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_NAT = np.iinfo(np.int64).min


def _iso_strings(text: pd.Series) -> pd.Series:
    """ISO-8601 strings (already stripped), naive ones taken as UTC; NaT where unparseable.

    Zoned and naive strings are parsed separately: Arrow requires it, and pandas 2.x with
    format="ISO8601" would apply the offset of a preceding zoned string to a naive one.
    """
    arr = pa.array(text, type=pa.string(), from_pandas=True)
    zoned = np.asarray(pc.match_substring_regex(arr, _TZ_SUFFIX).fill_null(False), bool)
    nanos = np.full(len(text), _NAT, dtype=np.int64)
    for mask, tz in ((zoned, "UTC"), (~zoned, None)):
        if mask.any():
            nanos[mask] = _parse_iso(arr.filter(mask), tz)
    return pd.Series(nanos.view("datetime64[ns]"), index=text.index)


def _parse_iso(arr: pa.Array, tz: str | None) -> np.ndarray:
    """Nanoseconds since epoch (UTC) per string, _NAT where unparseable.

    Arrow's cast parses the whole column in C++; it fails on any bad cell, so then only the
    ISO-shaped cells are cast, and pandas handles them if even that fails (e.g. month 13).
    """
    target = pa.timestamp("ns", tz=tz)
    try:
        return _nanos(pc.cast(arr, target))
    except pa.ArrowInvalid:
        pass
    shaped = np.asarray(pc.match_substring_regex(arr, _ISO).fill_null(False), bool)
    out = np.full(len(arr), _NAT, dtype=np.int64)
    candidates = arr.filter(shaped)
    try:
        out[shaped] = _nanos(pc.cast(candidates, target))
    except pa.ArrowInvalid:
        strs = candidates.to_numpy(zero_copy_only=False)
        parsed = pd.to_datetime(strs, utc=True, errors="coerce", format="ISO8601")
        out[shaped] = parsed.tz_localize(None).as_unit("ns").asi8
    return out


def _nanos(arr: pa.Array) -> np.ndarray:
    ints = pc.fill_null(arr.cast(pa.int64()), _NAT)
    return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)


def _naive_utc(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col.astype("datetime64[ns]")


def _string_timestamps(text: pd.Series, max_epoch: float) -> tuple[pd.Series, pd.Series]:
    num = to_number(text)  # tolerates surrounding whitespace; "nan" -> NaN
    rest = num.isna()  # not a number: ISO-8601, garbage or missing
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    codes = pd.Series(TS_OK, index=text.index)
    out[~rest], codes[~rest] = _epoch_seconds(num[~rest], max_epoch)
    if rest.any():
        stripped = strip_strings(text[rest])
        out[rest] = _iso_strings(stripped)
        failed = stripped[out[rest].isna().to_numpy() & stripped.notna().to_numpy()]
        if len(failed):
            codes[failed.index] = np.array([_out_of_range_code(s) for s in failed])
    return out, codes


def _out_of_range_code(text: str) -> int:
    """For an ISO date nanosecond datetimes cannot hold (after 2262 or before 1677): whether
    it is in the future or before 1970; TS_OK (then: unparseable) for anything else."""
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return TS_OK
    return TS_FUTURE if parsed.year >= 2262 else TS_BEFORE_1970 if parsed.year < 1970 else TS_OK


def _kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "other"
    if isinstance(value, int | float | np.number):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime | date | np.datetime64):
        return "dt"
    return "other"


def _mixed_timestamps(col: pd.Series, max_epoch: float) -> tuple[pd.Series, pd.Series]:
    kinds = col.map(_kind)  # per-element, only for object columns that are not all strings
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]")
    codes = pd.Series(TS_OK, index=col.index)
    for kind, parse in (("num", _epoch_seconds), ("str", _string_timestamps)):
        mask = kinds.eq(kind)
        if mask.any():
            part = col[mask] if kind == "str" else col[mask].astype("float64")
            out[mask], codes[mask] = parse(part, max_epoch)
    dt_mask = kinds.eq("dt")
    if dt_mask.any():
        parsed = pd.to_datetime(col[dt_mask], utc=True, errors="coerce")
        out[dt_mask] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
    return out, codes


def parse_timestamps(
    col: pd.Series, now: pd.Timestamp | None = None, tolerance: pd.Timedelta | None = None
) -> tuple[pd.Series, pd.Series]:
    """Parse epoch seconds / ISO-8601 (any tz) / datetimes, mixed, to naive-UTC datetime64[ns].

    Returns the parsed column (NaT where invalid) and a problem code per row (TS_OK,
    TS_UNPARSEABLE, TS_BEFORE_1970, TS_FUTURE: later than ``now`` + ``tolerance``, 1 day
    by default).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    limit = now + (tolerance if tolerance is not None else pd.Timedelta(days=1))
    max_epoch = (limit - EPOCH).total_seconds()
    if ptypes.is_datetime64_any_dtype(col):
        out, codes = _naive_utc(col), pd.Series(TS_OK, index=col.index)
    elif ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
        out, codes = _epoch_seconds(col.astype("float64"), max_epoch)
    elif ptypes.infer_dtype(col, skipna=True) in ("string", "empty"):
        out, codes = _string_timestamps(col, max_epoch)
    else:
        out, codes = _mixed_timestamps(col, max_epoch)
    checked = codes.eq(TS_OK)
    codes = codes.mask(checked & out.isna(), TS_UNPARSEABLE)
    codes = codes.mask(checked & (out < EPOCH), TS_BEFORE_1970)
    codes = codes.mask(checked & (out > limit), TS_FUTURE)
    return out.where(codes.eq(TS_OK)), codes.astype("int8")
