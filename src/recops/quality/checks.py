"""The data-quality measures of `recops validate`, in DuckDB SQL (so they scale to tens of
millions of events without pandas).

The input is a view `raw` with the canonical columns as text (user_id, item_id, timestamp,
event_type, value, weight): a raw events file read with its column mapping (nothing validated
yet: that is what is measured), or the store's events of a dataset. Timestamps are parsed as
epoch numbers (in the file's unit) or ISO-8601, like ingest does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from recops.columns import Columns

KEY = (Columns.user, Columns.item, Columns.event_type, Columns.timestamp)
TEXT_COLUMNS = (Columns.user, Columns.item, Columns.timestamp, Columns.event_type)
NUMBER_COLUMNS = (Columns.value, Columns.weight)
MAX_ID_LENGTH = 256
UNIT_SECONDS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True)
class Limits:
    min_user_events: int = 3
    min_item_events: int = 2
    window_days: float = 14.0
    future_tolerance_hours: float = 1.0
    timestamp_unit: str = "s"


@dataclass
class Measures:
    """Everything measured; `checks` are the flat numbers `--fail-on` can test."""

    checks: dict[str, float] = field(default_factory=dict)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    timestamps: dict[str, Any] = field(default_factory=dict)
    distribution: dict[str, dict[str, float | None]] = field(default_factory=dict)
    event_types: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def raw_view_from_file(
    con: duckdb.DuckDBPyConnection, path: Path, columns: dict[str, str | None], fmt: str
) -> None:
    """`raw` over an events file: mapped columns as text, absent ones as NULL."""
    if fmt == "parquet":
        source = f"read_parquet('{_quoted(path)}')"
    else:
        sep = "\\t" if fmt == "tsv" else ","
        source = (
            f"read_csv('{_quoted(path)}', all_varchar=true, header=true, delim='{sep}', "
            "null_padding=true, ignore_errors=false)"
        )
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    selected = []
    for canonical in (*TEXT_COLUMNS, Columns.value, Columns.weight):
        key = "rating" if canonical == Columns.value else canonical.removesuffix("_id")
        name = columns.get(key) or columns.get(canonical)
        if name and name in names:
            selected.append(f'CAST("{name}" AS VARCHAR) AS {canonical}')
        else:
            selected.append(f"NULL::VARCHAR AS {canonical}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {', '.join(selected)} FROM {source}")


def raw_view_from_store(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    cols = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in (*TEXT_COLUMNS, *NUMBER_COLUMNS))
    name = dataset.replace("'", "''")  # a view cannot take a prepared parameter
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {cols} FROM events "
        f"WHERE {Columns.dataset} = '{name}'"
    )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def measure(con: duckdb.DuckDBPyConnection, limits: Limits) -> Measures:
    """Every measure over `raw` (plus a parsed view `clean` of the rows with valid keys)."""
    seconds = UNIT_SECONDS.get(limits.timestamp_unit, 1)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW parsed AS SELECT *,
            COALESCE(
                CAST(to_timestamp(TRY_CAST(trim({Columns.timestamp}) AS DOUBLE) / {seconds})
                     AS TIMESTAMP),
                TRY_CAST(trim({Columns.timestamp}) AS TIMESTAMP)) AS ts
            FROM raw"""
    )
    m = Measures()
    rows = _one(con, "SELECT count(*) FROM raw")
    m.checks["rows"] = rows
    _column_quality(con, m, rows)
    _duplicates(con, m)
    _timestamps(con, m, limits)
    hours = float(limits.future_tolerance_hours)
    con.execute(  # the rows training would keep: ids, a time, not in the future
        f"""CREATE OR REPLACE TEMP VIEW clean AS SELECT * FROM parsed
            WHERE nullif(trim({Columns.user}), '') IS NOT NULL
              AND nullif(trim({Columns.item}), '') IS NOT NULL AND ts IS NOT NULL
              AND ts <= CAST(now() AS TIMESTAMP) + INTERVAL ({hours}) HOUR"""
    )
    _distribution(con, m, limits)
    _cold_share(con, m, limits)
    mix = con.execute(
        f"""SELECT coalesce({Columns.event_type}, '(none)'), count(*) FROM clean
            GROUP BY 1 ORDER BY 2 DESC"""
    ).fetchall()
    total = sum(int(n) for _, n in mix) or 1
    m.event_types = {str(t): int(n) / total for t, n in mix}
    return m


def _one(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return int(con.execute(query).fetchall()[0][0] or 0)


def _column_quality(con: duckdb.DuckDBPyConnection, m: Measures, rows: int) -> None:
    """Null (missing or blank) and malformed shares per column."""
    malformed = {
        Columns.user: f"length(trim({Columns.user})) > {MAX_ID_LENGTH}",
        Columns.item: f"length(trim({Columns.item})) > {MAX_ID_LENGTH}",
        Columns.timestamp: "ts IS NULL",
        Columns.event_type: "FALSE",
        Columns.value: f"TRY_CAST(trim({Columns.value}) AS DOUBLE) IS NULL",
        Columns.weight: (
            f"coalesce(TRY_CAST(trim({Columns.weight}) AS DOUBLE), -1) < 0 "
            f"OR NOT isfinite(coalesce(TRY_CAST(trim({Columns.weight}) AS DOUBLE), 0))"
        ),
    }
    parts = []
    for column, rule in malformed.items():
        blank = f"nullif(trim({column}), '') IS NULL"
        parts += [f"count(*) FILTER ({blank})", f"count(*) FILTER (NOT ({blank}) AND ({rule}))"]
    values = con.execute(f"SELECT {', '.join(parts)} FROM parsed").fetchall()[0]
    denominator = rows or 1
    for i, column in enumerate(malformed):
        nulls, bad = int(values[2 * i]), int(values[2 * i + 1])
        m.columns[column] = {
            "null": nulls,
            "null_share": nulls / denominator,
            "malformed": bad,
            "malformed_share": bad / denominator,
        }
    keys = (Columns.user, Columns.item, Columns.timestamp)
    m.checks["null_ids"] = sum(m.columns[c]["null"] for c in (Columns.user, Columns.item))
    m.checks["null_timestamps"] = m.columns[Columns.timestamp]["null"]
    m.checks["null_share"] = max(m.columns[c]["null_share"] for c in keys)
    m.checks["malformed_share"] = max(m.columns[c]["malformed_share"] for c in keys)
    m.checks["malformed_timestamps"] = m.columns[Columns.timestamp]["malformed"]


def _duplicates(con: duckdb.DuckDBPyConnection, m: Measures) -> None:
    """Rows repeating an earlier row's event key (user, item, event type, time)."""
    key = ", ".join(f"trim({c})" for c in KEY[:3])
    dupes = _one(
        con,
        f"""SELECT coalesce(sum(n - 1), 0) FROM (
                SELECT count(*) AS n FROM parsed WHERE ts IS NOT NULL
                GROUP BY {key}, ts HAVING count(*) > 1)""",
    )
    m.checks["duplicates"] = dupes
    m.checks["duplicate_share"] = dupes / (m.checks["rows"] or 1)


def _timestamps(con: duckdb.DuckDBPyConnection, m: Measures, limits: Limits) -> None:
    hours = float(limits.future_tolerance_hours)
    first, last, future = con.execute(
        f"""SELECT min(ts), max(ts), count(*) FILTER (
                WHERE ts > CAST(now() AS TIMESTAMP) + INTERVAL ({hours}) HOUR)
            FROM parsed"""
    ).fetchall()[0]
    m.timestamps = {
        "min": first.isoformat() if first else None,
        "max": last.isoformat() if last else None,
        "future": int(future),
        "future_tolerance_hours": hours,
    }
    m.checks["future"] = int(future)


def _distribution(con: duckdb.DuckDBPyConnection, m: Measures, limits: Limits) -> None:
    for side, column, minimum in (
        ("user", Columns.user, limits.min_user_events),
        ("item", Columns.item, limits.min_item_events),
    ):
        row = con.execute(
            f"""SELECT count(*), min(n), quantile_cont(n, 0.5), quantile_cont(n, 0.9),
                       quantile_cont(n, 0.99), max(n), avg(n),
                       count(*) FILTER (WHERE n < {int(minimum)})
                FROM (SELECT trim({column}) AS id, count(*) AS n FROM clean GROUP BY 1)"""
        ).fetchall()[0]
        count = int(row[0])
        keys = ("count", "min", "p50", "p90", "p99", "max", "mean")
        m.distribution[f"events_per_{side}"] = {
            k: (float(v) if v is not None else None) for k, v in zip(keys, row[:7], strict=True)
        }
        m.checks[f"{side}s_under_min_history"] = int(row[7])
        m.checks[f"{side}s_under_min_history_share"] = int(row[7]) / (count or 1)
        m.distribution[f"events_per_{side}"]["min_history"] = float(minimum)


def _cold_share(con: duckdb.DuckDBPyConnection, m: Measures, limits: Limits) -> None:
    """Share of the last window's users/items with no event before it."""
    days = float(limits.window_days)
    for side, column in (("user", Columns.user), ("item", Columns.item)):
        active, cold = con.execute(
            f"""WITH bounds AS (SELECT max(ts) - INTERVAL ({days}) DAY AS start FROM clean),
                firsts AS (SELECT trim({column}) AS id, min(ts) AS first, max(ts) AS last
                           FROM clean GROUP BY 1)
                SELECT count(*) FILTER (WHERE last >= start),
                       count(*) FILTER (WHERE last >= start AND first >= start)
                FROM firsts, bounds"""
        ).fetchall()[0]
        m.checks[f"cold_{side}_share"] = int(cold) / int(active) if active else 0.0
    m.extra["window_days"] = days


def store_context(con: duckdb.DuckDBPyConnection, dataset: str, m: Measures) -> None:
    """Item metadata coverage, quarantine counts by rule and the change since the previous
    batch, from the store (when it has the dataset)."""
    covered, total = con.execute(
        f"""SELECT count(*) FILTER (WHERE i.{Columns.item} IS NOT NULL), count(*)
            FROM (SELECT DISTINCT trim({Columns.item}) AS item FROM clean) e
            LEFT JOIN (SELECT DISTINCT {Columns.item} FROM items
                       WHERE {Columns.dataset} = $d AND {Columns.category} IS NOT NULL) i
              ON i.{Columns.item} = e.item""",
        {"d": dataset},
    ).fetchall()[0]
    m.checks["item_metadata_coverage"] = int(covered) / int(total) if total else 0.0
    rules = con.execute(
        f"""SELECT {Columns.rule}, count(*) FROM quarantine WHERE {Columns.dataset} = $d
            GROUP BY 1 ORDER BY 2 DESC""",
        {"d": dataset},
    ).fetchall()
    m.extra["quarantine_by_rule"] = {str(r): int(n) for r, n in rules}
    m.checks["quarantined"] = sum(int(n) for _, n in rules)
    batches = con.execute(
        f"""SELECT {Columns.batch}, origin, n_rows, n_inserted, n_quarantined FROM batches
            WHERE {Columns.dataset} = $d AND status = 'ok' ORDER BY {Columns.batch} DESC LIMIT 2""",
        {"d": dataset},
    ).fetchall()
    m.extra["last_batches"] = [
        {"batch_id": b, "origin": o, "rows": r, "inserted": i, "quarantined": q}
        for b, o, r, i, q in batches
    ]
    if len(batches) == 2:
        (_, _, rows, _, quarantined), (_, _, prev_rows, _, prev_q) = batches
        share, prev = quarantined / (rows or 1), prev_q / (prev_rows or 1)
        m.checks["quarantine_share_change"] = share - prev
        m.extra["since_last_batch"] = {
            "rows": rows,
            "rows_before": prev_rows,
            "quarantine_share": share,
            "quarantine_share_before": prev,
        }
