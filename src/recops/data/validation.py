"""Row-level validation: type raw events/items and quarantine bad rows under a named rule.

Every check is vectorised; Python-level work (detail strings, raw JSON) happens only for the
rejected rows, so a 10M-row batch with few problems costs a handful of pandas passes.
A row gets the *first* failing rule in rule order, and no row is ever dropped silently:
``len(valid) + len(quarantine) == len(input)``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from recops.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from recops.data.parsing import (
    ID_NOT_INTEGER,
    MAX_EXACT_FLOAT,
    TS_BEFORE_1970,
    TS_FUTURE,
    TS_OK,
    TS_UNPARSEABLE,
    as_float,
    as_id,
    as_text,
    longer_than,
    parse_timestamps,
    scalar_text,
)
from recops.data.schema import RAW
from recops.errors import ConfigError, DataSourceError

logger = logging.getLogger(__name__)

QUARANTINE_COLUMNS = (Columns.source_row, Columns.rule, Columns.detail, RAW)
EVENT_RULES = (
    "missing_user",
    "missing_item",
    "bad_id",
    "bad_timestamp",
    "bad_value",
    "bad_weight",
    "negative_weight",
    "id_too_long",
    "duplicate",
)
ITEM_RULES = ("missing_item", "bad_id", "id_too_long", "bad_price", "duplicate")
MAX_ID_LEN = 256
DEFAULT_EVENT_TYPE = "interaction"
DEFAULT_WEIGHT = 1.0
EVENT_KEY = (Columns.user, Columns.item, Columns.event_type, Columns.timestamp)
EPOCH = pd.Timestamp("1970-01-01")
_MAX_SHOWN = 80  # longest raw value quoted in a detail string

Detail = Callable[[np.ndarray], list[str]]  # row positions -> one detail string per row
#: Id cells that mean "no value" (`data.ingest.null_tokens`); blank cells always do.
DEFAULT_NULL_TOKENS = ("NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none", "NA", "N/A",
                       "n/a", "<NA>")  # fmt: skip


@dataclass(frozen=True)
class ValidationSettings:
    """The configurable parts of the rules (`data.ingest` in the config)."""

    null_tokens: frozenset[str] = frozenset(DEFAULT_NULL_TOKENS)
    future_tolerance: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=1))

    @classmethod
    def from_config(cls, ingest_cfg: Any) -> ValidationSettings:
        """From the `data.ingest` mapping (missing keys keep the defaults)."""
        cfg = dict(ingest_cfg or {})
        tokens = cfg.get("null_tokens", DEFAULT_NULL_TOKENS)
        days = cfg.get("future_tolerance_days", 1.0)
        try:
            tolerance = pd.Timedelta(days=float(days))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"data.ingest.future_tolerance_days must be a number of days, got {days!r}"
            ) from exc
        if tolerance < pd.Timedelta(0):
            raise ConfigError(f"data.ingest.future_tolerance_days must be >= 0, got {days!r}")
        return cls(frozenset(str(t) for t in (tokens or ())), tolerance)


@dataclass
class ValidationResult:
    """Typed valid rows, quarantined rows (source_row, rule, detail, raw) and counts.

    ``counts`` has ``rows``, ``valid``, ``quarantined`` and one entry per rule (zeros included).
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    #: source row of each valid row (what a batch-wide de-duplication names)
    source_rows: np.ndarray | None = None

    @property
    def rule_counts(self) -> dict[str, int]:
        """Per-rule counts of quarantined rows, only the rules that fired."""
        return {k: v for k, v in self.counts.items() if k not in _TOTALS and v > 0}


_TOTALS = ("rows", "valid", "quarantined")


# ---------------------------------------------------------------- scalar helpers (rejects only)


def _shown(value: Any) -> str:
    text = str(value)
    return f"'{text[:_MAX_SHOWN]}...'" if len(text) > _MAX_SHOWN else f"'{text}'"


def _json_safe(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return value


def _raw_json(frame: pd.DataFrame, positions: np.ndarray) -> list[str]:
    cols = [c for c in frame.columns if c != Columns.source_row]
    records = frame.iloc[positions][cols].to_dict(orient="records")
    return [
        json.dumps({str(k): _json_safe(v) for k, v in rec.items()}, default=str, ensure_ascii=False)
        for rec in records
    ]


# ---------------------------------------------------------------- rule engine


def _first_failing(n: int, checks: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    """Rule code per row: 0 = valid, i + 1 = the first failing check ``checks[i]``."""
    codes = np.zeros(n, dtype=np.int8)
    for i, (_, fails) in enumerate(checks):
        codes[(codes == 0) & fails] = i + 1
    return codes


def _other_occurrence(
    keys: pd.DataFrame, rows: np.ndarray, dup: np.ndarray, keep: Literal["first", "last"]
) -> dict[int, int]:
    """Map each duplicate position to the source row of the occurrence that is kept."""
    involved = keys[keys.duplicated(keep=False).to_numpy()]
    kept_row = (
        involved.assign(_row=rows[involved.index])
        .groupby(list(keys.columns), sort=False, dropna=False)["_row"]
        .transform(keep)
    )
    mapping = dict(zip(involved.index, kept_row.to_numpy(), strict=True))
    return {int(pos): int(mapping[pos]) for pos in np.flatnonzero(dup)}


def _quarantine(
    frame: pd.DataFrame,
    rows: np.ndarray,
    codes: np.ndarray,
    rules: Sequence[str],
    details: dict[str, Detail],
) -> pd.DataFrame:
    rejected = np.flatnonzero(codes)
    detail = np.empty(len(rejected), dtype=object)
    for i, rule in enumerate(rules):
        which = codes[rejected] == i + 1
        if which.any():
            detail[which] = details[rule](rejected[which])
    return pd.DataFrame(
        {
            Columns.source_row: rows[rejected].astype("int64"),
            Columns.rule: np.asarray(rules, dtype=object)[codes[rejected] - 1],
            Columns.detail: detail,
            RAW: _raw_json(frame, rejected),
        }
    )


def _counts(n: int, codes: np.ndarray, rules: Sequence[str]) -> dict[str, int]:
    per_rule = np.bincount(codes, minlength=len(rules) + 1)
    counts = {"rows": n, "valid": int(per_rule[0]), "quarantined": int(n - per_rule[0])}
    counts.update({rule: int(per_rule[i + 1]) for i, rule in enumerate(rules)})
    return counts


def _source_rows(frame: pd.DataFrame) -> np.ndarray:
    if Columns.source_row in frame.columns:
        return frame[Columns.source_row].to_numpy(dtype="int64")
    return np.arange(1, len(frame) + 1, dtype="int64")


def _require(frame: pd.DataFrame, required: Sequence[str], origin: str, what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataSourceError(
            f"{origin}: {what} lack required column(s) {missing}; have {list(frame.columns)}"
        )


def log_counts(origin: str, what: str, counts: dict[str, int]) -> None:
    fired = ", ".join(f"{k}={v}" for k, v in counts.items() if k not in _TOTALS and v)
    logger.info(
        "%s: %d %s rows, %d valid, %d quarantined%s",
        origin,
        counts["rows"],
        what,
        counts["valid"],
        counts["quarantined"],
        f" ({fired})" if fired else "",
    )


# ---------------------------------------------------------------- events


def _ts_detail(raw: pd.Series, codes: pd.Series, tolerance: pd.Timedelta) -> Detail:
    reasons = {
        TS_UNPARSEABLE: "is not epoch seconds or ISO-8601",
        TS_BEFORE_1970: "is before 1970-01-01",
        TS_FUTURE: f"is in the future (more than {_duration(tolerance)} after the ingest time)",
    }

    def detail(p: int) -> str:
        value = raw.iloc[p]
        if scalar_text(value) in (None, ""):
            return f"{Columns.timestamp} is missing"
        return f"{Columns.timestamp} {_shown(value)} {reasons[int(codes.iloc[p])]}"

    return lambda pos: [detail(p) for p in pos]


def _duration(delta: pd.Timedelta) -> str:
    days = delta / pd.Timedelta(days=1)
    if days >= 1 and float(days).is_integer():
        return f"{days:.0f} day" + ("s" if days != 1 else "")
    return f"{delta.total_seconds() / 3600:g} hours"


def _id_detail(frame: pd.DataFrame, cols: Sequence[str], codes: Sequence[np.ndarray]) -> Detail:
    """'user_id 1.5 is not an integer' for the first id column whose float is not an exact id."""

    def one(p: int) -> str:
        col, code = next((c, k[p]) for c, k in zip(cols, codes, strict=True) if k[p])
        value = frame[col].iloc[p]
        if code == ID_NOT_INTEGER:
            return f"{col} {_shown(value)} is a float that is not a whole number: not an id"
        return (
            f"{col} {_shown(value)} is a float beyond 2**53 ({MAX_EXACT_FLOAT}): "
            "its integer id is not exact"
        )

    return lambda pos: [one(int(p)) for p in pos]


def _event_details(
    frame: pd.DataFrame,
    ts_codes: pd.Series,
    dup_of: Callable[[], dict[int, int]],
    ids: tuple[pd.Series, pd.Series],
    id_codes: tuple[np.ndarray, np.ndarray],
    tolerance: pd.Timedelta,
) -> dict[str, Detail]:
    def raw(col: str, p: int) -> Any:
        return frame[col].iloc[p] if col in frame.columns else None

    def too_long(pos: np.ndarray) -> list[str]:
        out = []
        for p in pos:
            name, text = next(
                (n, s.iloc[p])
                for n, s in zip((Columns.user, Columns.item), ids, strict=True)
                if len(s.iloc[p]) > MAX_ID_LEN
            )
            out.append(f"{name} is {len(text)} characters long (max {MAX_ID_LEN})")
        return out

    def duplicate(pos: np.ndarray) -> list[str]:
        first = dup_of()
        return [f"duplicate of row {first[int(p)]} (same {', '.join(EVENT_KEY)})" for p in pos]

    return {
        "missing_user": lambda pos: [f"{Columns.user} is missing"] * len(pos),
        "missing_item": lambda pos: [f"{Columns.item} is missing"] * len(pos),
        "bad_id": _id_detail(frame, (Columns.user, Columns.item), id_codes),
        "bad_timestamp": _ts_detail(frame[Columns.timestamp], ts_codes, tolerance),
        "bad_value": lambda pos: [
            f"{Columns.value} {_shown(raw(Columns.value, p))} is not a number" for p in pos
        ],
        "bad_weight": lambda pos: [
            f"{Columns.weight} {_shown(raw(Columns.weight, p))} is not a finite number" for p in pos
        ],
        "negative_weight": lambda pos: [
            f"{Columns.weight} {_shown(raw(Columns.weight, p))} is negative" for p in pos
        ],
        "id_too_long": too_long,
        "duplicate": duplicate,
    }


def _optional(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col] if col in frame.columns else pd.Series(None, index=frame.index, dtype=object)


def validate_events(
    events: pd.DataFrame,
    origin: str,
    now: pd.Timestamp | None = None,
    settings: ValidationSettings | None = None,
    dedupe: bool = True,
) -> ValidationResult:
    """Type raw events and quarantine bad rows (see EVENT_RULES for the rules, in order).

    Missing ``event_type`` becomes "interaction", missing ``weight`` 1.0, missing ``value`` NaN.
    ``now`` (naive UTC) fixes the "future" cut-off for reproducible tests. ``dedupe=False``
    leaves the ``duplicate`` rule to the caller (a chunked ingest de-duplicates the whole
    batch in the store, see ``recops.data.store``).
    """
    settings = settings or ValidationSettings()
    _require(events, (Columns.user, Columns.item, Columns.timestamp), origin, "events")
    frame = (
        events
        if isinstance(events.index, pd.RangeIndex) and events.index.start == 0
        else (events.reset_index(drop=True))
    )
    user, user_codes = as_id(frame[Columns.user], settings.null_tokens)
    item, item_codes = as_id(frame[Columns.item], settings.null_tokens)
    ts, ts_codes = parse_timestamps(frame[Columns.timestamp], now, settings.future_tolerance)
    value, bad_value = as_float(_optional(frame, Columns.value))
    weight, bad_weight = as_float(_optional(frame, Columns.weight))
    weight = weight.fillna(DEFAULT_WEIGHT)
    event_type = as_text(_optional(frame, Columns.event_type)).fillna(DEFAULT_EVENT_TYPE)
    too_long = longer_than(user, MAX_ID_LEN) | longer_than(item, MAX_ID_LEN)
    checks = [
        ("missing_user", user.isna().to_numpy() & (user_codes == 0)),
        ("missing_item", item.isna().to_numpy() & (item_codes == 0)),
        ("bad_id", (user_codes != 0) | (item_codes != 0)),
        ("bad_timestamp", ts_codes.ne(TS_OK).to_numpy()),
        ("bad_value", bad_value.to_numpy()),
        ("bad_weight", bad_weight.to_numpy()),
        ("negative_weight", (weight < 0).to_numpy()),
        ("id_too_long", too_long),
    ]
    codes = _first_failing(len(frame), checks)
    typed = pd.DataFrame(
        {
            Columns.user: user,
            Columns.item: item,
            Columns.timestamp: ts,
            Columns.event_type: event_type,
            Columns.value: value,
            Columns.weight: weight,
        }
    )
    keys = typed[list(EVENT_KEY)] if not codes.any() else typed.loc[codes == 0, list(EVENT_KEY)]
    dup = np.zeros(len(frame), dtype=bool)
    if dedupe:
        dup[keys.index[keys.duplicated(keep="first").to_numpy()]] = True
    codes[dup] = len(EVENT_RULES)
    rows = _source_rows(frame)
    details = _event_details(
        frame,
        ts_codes,
        lambda: _other_occurrence(keys, rows, dup, "first"),
        (user, item),
        (user_codes, item_codes),
        settings.future_tolerance,
    )
    quarantine = _quarantine(frame, rows, codes, EVENT_RULES, details)
    valid = typed if not codes.any() else typed.loc[codes == 0, list(EVENT_COLUMNS)]
    valid = valid.reset_index(drop=True)
    counts = _counts(len(frame), codes, EVENT_RULES)
    if dedupe:
        log_counts(origin, "event", counts)
    return ValidationResult(valid, quarantine, counts, rows[codes == 0])


def duplicate_quarantine(chunk: pd.DataFrame, first_row: Mapping[int, int]) -> pd.DataFrame:
    """Quarantine rows for the rows of a raw chunk that `first_row` (source row -> source row
    of the occurrence that is kept) names as duplicates; as `validate_events` words them."""
    frame = chunk.reset_index(drop=True)
    rows = _source_rows(frame)
    positions = np.flatnonzero(np.isin(rows, np.fromiter(first_row, dtype=np.int64)))
    same = ", ".join(EVENT_KEY)
    return pd.DataFrame(
        {
            Columns.source_row: rows[positions].astype("int64"),
            Columns.rule: "duplicate",
            Columns.detail: [
                f"duplicate of row {first_row[int(r)]} (same {same})" for r in rows[positions]
            ],
            RAW: _raw_json(frame, positions),
        }
    )


# ---------------------------------------------------------------- items


def _clean_tags(col: pd.Series) -> pd.Series:
    text = as_text(col).copy()  # as_text may return its input unchanged
    present = text.notna()
    if present.any():
        cleaned = (
            text[present]
            .str.replace(r"\s*\|\s*", "|", regex=True)
            .str.replace(r"\|{2,}", "|", regex=True)
            .str.strip("|")
        )
        text[present] = cleaned.where(cleaned.ne(""), None)
    return text


def validate_items(
    items: pd.DataFrame, origin: str, settings: ValidationSettings | None = None
) -> ValidationResult:
    """Type raw items; quarantine missing/too-long ids, bad prices and superseded duplicates.

    For a repeated item id the *last* row wins; earlier ones go to quarantine as ``duplicate``.
    """
    settings = settings or ValidationSettings()
    _require(items, (Columns.item,), origin, "items")
    frame = items.reset_index(drop=True)
    item, item_codes = as_id(frame[Columns.item], settings.null_tokens)
    price, bad_price = as_float(_optional(frame, Columns.price))
    bad_price |= price < 0
    checks = [
        ("missing_item", item.isna().to_numpy() & (item_codes == 0)),
        ("bad_id", item_codes != 0),
        ("id_too_long", longer_than(item, MAX_ID_LEN)),
        ("bad_price", bad_price.to_numpy()),
    ]
    codes = _first_failing(len(frame), checks)
    keys = item[codes == 0].to_frame()
    dup = np.zeros(len(frame), dtype=bool)
    dup[keys.index[keys.duplicated(keep="last").to_numpy()]] = True
    codes[dup] = len(ITEM_RULES)
    rows = _source_rows(frame)

    def raw_price(pos: np.ndarray) -> list[str]:
        return [
            f"{Columns.price} {_shown(frame[Columns.price].iloc[p])} is not a non-negative number"
            for p in pos
        ]

    def superseded(pos: np.ndarray) -> list[str]:
        last = _other_occurrence(keys, rows, dup, "last")
        return [
            f"{Columns.item} {_shown(item.iloc[p])} is repeated at row {last[int(p)]}, which wins"
            for p in pos
        ]

    details: dict[str, Detail] = {
        "missing_item": lambda pos: [f"{Columns.item} is missing"] * len(pos),
        "bad_id": _id_detail(frame, (Columns.item,), (item_codes,)),
        "id_too_long": lambda pos: [
            f"{Columns.item} is {len(item.iloc[p])} characters long (max {MAX_ID_LEN})" for p in pos
        ],
        "bad_price": raw_price,
        "duplicate": superseded,
    }
    typed = pd.DataFrame(
        {
            Columns.item: item,
            Columns.title: as_text(_optional(frame, Columns.title)),
            Columns.category: as_text(_optional(frame, Columns.category)),
            Columns.brand: as_text(_optional(frame, Columns.brand)),
            Columns.price: price,
            Columns.tags: _clean_tags(_optional(frame, Columns.tags)),
        }
    )
    quarantine = _quarantine(frame, rows, codes, ITEM_RULES, details)
    valid = typed.loc[codes == 0, list(ITEM_COLUMNS)].reset_index(drop=True)
    counts = _counts(len(frame), codes, ITEM_RULES)
    log_counts(origin, "item", counts)
    return ValidationResult(valid, quarantine, counts)
