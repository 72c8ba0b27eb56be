"""The event store: one DuckDB file holding events, items, batches and quarantined rows.

Ingestion is one transaction per batch (a failure leaves no partial batch, only a ``failed``
row in ``batches``) and idempotent: events already present for the same
(dataset, user_id, item_id, event_type, timestamp) are skipped by an anti-join in SQL.
Frames go to DuckDB as Arrow tables and snapshots come back as Arrow record batches, so no
per-row Python runs on the event path.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recops.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from recops.data.hashing import ContentHasher
from recops.data.schema import EVENTS_SCHEMA, ITEMS_SCHEMA, QUARANTINE_SCHEMA, STORE_DDL
from recops.data.sources.base import RawData
from recops.data.validation import RAW, ValidationResult
from recops.errors import ConfigError, DataSourceError

logger = logging.getLogger(__name__)

ITEMS_RULE_PREFIX = "items:"  # quarantine.rule of item rows, e.g. "items:bad_price"
EVENTS_FILE, ITEMS_FILE, MANIFEST_FILE = "events.parquet", "items.parquet", "manifest.json"
_BATCH_ROWS = 1_000_000  # rows per snapshot row group (one dictionary per column per group)

_EVENT_KEY = (Columns.user, Columns.item, Columns.event_type, Columns.timestamp)
_SNAPSHOT_ORDER = (Columns.timestamp, Columns.user, Columns.item, Columns.event_type)
_E, _I = ", ".join(EVENT_COLUMNS), ", ".join(ITEM_COLUMNS)
_DS, _BATCH = Columns.dataset, Columns.batch  # bookkeeping columns of every table


@dataclass
class BatchReport:
    """What one ingest did. ``rule_counts``/``item_rule_counts`` list only the rules that fired."""

    batch_id: int
    dataset: str
    origin: str
    content_hash: str
    started_at: str
    finished_at: str
    n_rows: int
    n_valid: int
    n_inserted: int
    n_already_present: int
    n_quarantined: int
    status: str
    rule_counts: dict[str, int] = field(default_factory=dict)
    n_items: int = 0
    n_items_quarantined: int = 0
    item_rule_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SnapshotManifest:
    """Describes an exported snapshot; ``content_hash`` identifies the events content.

    The hash is over the canonical bytes of the sorted events (see ``recops.data.hashing``), not
    over parquet bytes, so it is stable across writer versions and changes with any value.
    """

    dataset: str
    n_events: int
    n_users: int
    n_items: int  # distinct items in events
    n_catalog_items: int  # rows of items.parquet
    time_min: str | None
    time_max: str | None
    content_hash: str
    items_content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_STAGED = "staged_events"
_STAGING_DDL = f"""CREATE TEMP TABLE {_STAGED} ({Columns.source_row} BIGINT,
    {Columns.user} VARCHAR, {Columns.item} VARCHAR, {Columns.timestamp} TIMESTAMP_NS,
    {Columns.event_type} VARCHAR, {Columns.value} DOUBLE, {Columns.weight} DOUBLE,
    key_hash UBIGINT)"""
_STAGED_SCHEMA = pa.schema([(Columns.source_row, pa.int64()), *EVENTS_SCHEMA])


class BatchWriter:
    """One batch in the making (from `EventStore.write_batch`).

    `stage` appends a validated chunk: its quarantined rows go straight to ``quarantine``, its
    valid rows to a staging table. `duplicates` then finds staged rows repeating the key of an
    earlier row of the batch (whatever chunk each came from) and drops them from staging; the
    caller quarantines them. `finish` inserts what is left (anti-joined against the dataset's
    events: idempotence) and the items, and records the batch.
    """

    def __init__(self, store: EventStore, dataset: str, origin: str, content_hash: str) -> None:
        self.store, self.dataset = store, dataset
        self.counts: dict[str, int] = {}
        batch_id = int(store._scalar("SELECT nextval('batch_id_seq')"))
        self.report = BatchReport(
            batch_id=batch_id,
            dataset=dataset,
            origin=origin,
            content_hash=content_hash,
            started_at=_now().isoformat(),
            finished_at="",
            n_rows=0,
            n_valid=0,
            n_inserted=0,
            n_already_present=0,
            n_quarantined=0,
            status="failed",
        )

    def stage(self, validation: ValidationResult) -> None:
        """Add one validated chunk (rows of the whole batch count once, in source order)."""
        for key, n in validation.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.add_quarantine(validation.quarantine, counted=False)
        valid = validation.valid
        if valid.empty:
            return
        rows = validation.source_rows
        if rows is None:
            rows = np.arange(1, len(valid) + 1, dtype=np.int64)
        table = _arrow(valid, EVENTS_SCHEMA).add_column(
            0, Columns.source_row, pa.array(rows, pa.int64())
        )
        with self.store._registered("incoming_events", table.cast(_STAGED_SCHEMA)):
            self.store._run(
                f"INSERT INTO {_STAGED} SELECT *, hash({', '.join(_EVENT_KEY)}) "
                "FROM incoming_events"
            )

    def duplicates(self) -> pd.DataFrame:
        """(source_row, first_row) of each staged row whose (user, item, type, timestamp)
        already occurs at an earlier source row of the batch; they leave the staging table."""
        keys = ", ".join(_EVENT_KEY)
        # grouping one 64-bit hash is cheap; only rows sharing a hash are compared exactly
        dups = self.store.con.execute(
            f"""WITH suspects AS (SELECT * FROM {_STAGED} WHERE key_hash IN (
                    SELECT key_hash FROM {_STAGED} GROUP BY key_hash HAVING count(*) > 1))
                SELECT s.{Columns.source_row}, d.first_row FROM suspects s
                JOIN (SELECT {keys}, min({Columns.source_row}) AS first_row FROM suspects
                      GROUP BY {keys} HAVING count(*) > 1) d USING ({keys})
                WHERE s.{Columns.source_row} > d.first_row
                ORDER BY s.{Columns.source_row}"""
        ).df()
        if len(dups):
            with self.store._registered("duplicate_rows", pa.Table.from_pandas(dups)):
                self.store._run(
                    f"""DELETE FROM {_STAGED} WHERE {Columns.source_row} IN
                        (SELECT {Columns.source_row} FROM duplicate_rows)"""
                )
        return dups

    def add_quarantine(self, quarantine: pd.DataFrame, counted: bool = True) -> None:
        """Quarantine rows (rule, detail, raw) of this batch; `counted` adds them to the
        batch's counts (rows found after staging, such as duplicates)."""
        if counted:
            for rule, n in quarantine[Columns.rule].value_counts().items():
                self.counts[str(rule)] = self.counts.get(str(rule), 0) + int(n)
            self.counts["quarantined"] = self.counts.get("quarantined", 0) + len(quarantine)
            self.counts["valid"] = self.counts.get("valid", 0) - len(quarantine)
        self.store._insert_quarantine(self.dataset, self.report.batch_id, quarantine, "")

    def finish(self, items_validation: ValidationResult | None = None) -> BatchReport:
        """Insert the staged events and the items; the batch's report."""
        report, store = self.report, self.store
        report.n_rows = self.counts.get("rows", 0)
        report.n_valid = self.counts.get("valid", 0)
        report.n_quarantined = self.counts.get("quarantined", 0)
        report.rule_counts = {
            k: v for k, v in self.counts.items() if k not in ("rows", "valid", "quarantined") and v
        }
        matches = " AND ".join(f"e.{c} = i.{c}" for c in _EVENT_KEY)
        report.n_inserted = store._run(
            f"""INSERT INTO events
                SELECT $dataset, {", ".join(f"i.{c}" for c in EVENT_COLUMNS)}, $batch
                FROM {_STAGED} i
                WHERE NOT EXISTS (
                    SELECT 1 FROM events e WHERE e.{_DS} = $dataset AND {matches})""",
            {"dataset": self.dataset, "batch": report.batch_id},
        )
        report.n_already_present = report.n_valid - report.n_inserted
        if items_validation is not None:
            report.n_items = len(items_validation.valid)
            report.n_items_quarantined = len(items_validation.quarantine)
            report.item_rule_counts = items_validation.rule_counts
            store._upsert_items(self.dataset, report.batch_id, items_validation.valid)
            store._insert_quarantine(
                self.dataset, report.batch_id, items_validation.quarantine, ITEMS_RULE_PREFIX
            )
        report.status, report.finished_at = "ok", _now().isoformat()
        store._insert_batch(report)
        return report


def copy_database_into(con: duckdb.DuckDBPyConnection, source: Path) -> None:
    """Copy every table of the DuckDB file `source` (attached read-only) into `con`'s
    database: its live rows only, committed."""
    target = con.execute("SELECT current_database()").fetchall()[0][0]
    con.execute(f"ATTACH '{source}' AS recops_copy_source (READ_ONLY)")
    con.execute(f'COPY FROM DATABASE recops_copy_source TO "{target}"')
    con.execute("DETACH recops_copy_source")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def _checked_size(size: str) -> str:
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", str(size), flags=re.IGNORECASE):
        raise ConfigError(f"data.ingest.memory_limit must look like '4GB', got {size!r}")
    return str(size).strip()


def _count(rows: list[tuple[Any, ...]]) -> int:
    """The row count a DuckDB INSERT/DELETE returns, as fetched with fetchall()."""
    return int(rows[0][0]) if rows else 0


class EventStore:
    """DuckDB-backed store of events/items per dataset, with batch bookkeeping and snapshots."""

    def __init__(self, path: str | Path, memory_limit: str | None = None) -> None:
        """`memory_limit` (e.g. "4GB") caps DuckDB's memory; beyond it, work spills to disk."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
            if memory_limit:
                self.con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
        except duckdb.Error as exc:
            raise DataSourceError(f"{self.path}: cannot open the event store: {exc}") from exc
        self.con.execute(STORE_DDL)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        dataset: str,
        raw: RawData,
        validation: ValidationResult,
        items_validation: ValidationResult | None = None,
    ) -> BatchReport:
        """Store one validated batch in a single transaction; see the module docstring."""
        with self.write_batch(dataset, raw.origin, raw.content_hash) as batch:
            batch.stage(validation)
            return batch.finish(items_validation)

    @contextmanager
    def write_batch(self, dataset: str, origin: str, content_hash: str) -> Iterator[BatchWriter]:
        """A batch written in one transaction: stage validated chunks, then `finish`.

        On an error nothing of the batch stays but a ``failed`` row in ``batches``.
        """
        writer = BatchWriter(self, dataset, origin, content_hash)
        self.con.begin()
        try:
            self._run(_STAGING_DDL)
            yield writer
            self._run(f"DROP TABLE {_STAGED}")
            self.con.commit()
        except BaseException:
            self.con.rollback()
            self._drop_views()
            writer.report.n_inserted = writer.report.n_already_present = 0
            writer.report.finished_at = _now().isoformat()
            writer.report.status = "failed"
            self._insert_batch(writer.report)  # its own (auto-commit) transaction
            raise
        logger.info(
            "batch %d (%s): %d inserted, %d already present, %d quarantined",
            writer.report.batch_id,
            dataset,
            writer.report.n_inserted,
            writer.report.n_already_present,
            writer.report.n_quarantined,
        )

    @contextmanager
    def _registered(self, name: str, table: pa.Table) -> Iterator[None]:
        """Expose an Arrow table to SQL as ``name``; dropped on success or by the rollback."""
        self.con.register(name, table)
        yield  # on error, unregistering inside an aborted transaction would mask the cause
        self.con.unregister(name)

    def _run(self, query: str, params: dict[str, Any] | list[Any] | None = None) -> int:
        """Execute a statement, fully fetching its result (DuckDB 2 refuses new work while a
        result is half-fetched); returns the count an INSERT/DELETE reports."""
        return _count(self.con.execute(query, params).fetchall())

    def _upsert_items(self, dataset: str, batch_id: int, valid: pd.DataFrame) -> None:
        """New rows replace old ones for the same (dataset, item_id), whole row."""
        with self._registered("incoming_items", _arrow(valid, ITEMS_SCHEMA)):
            self._run(
                f"""DELETE FROM items WHERE {_DS} = $dataset
                    AND {Columns.item} IN (SELECT {Columns.item} FROM incoming_items)""",
                {"dataset": dataset},
            )
            self._run(
                f"INSERT INTO items SELECT $dataset, {_I}, $batch FROM incoming_items",
                {"dataset": dataset, "batch": batch_id},
            )

    def _insert_quarantine(
        self, dataset: str, batch_id: int, quarantine: pd.DataFrame, prefix: str
    ) -> int:
        """Add quarantined rows, skipping any already quarantined for the dataset (same
        source row, rule and raw row): re-ingesting a file does not repeat its quarantine."""
        if quarantine.empty:
            return 0
        with self._registered("incoming_quarantine", _arrow(quarantine, QUARANTINE_SCHEMA)):
            return self._run(
                f"""INSERT INTO quarantine SELECT $batch, $dataset, i.{Columns.source_row},
                        $prefix || i.{Columns.rule}, i.{Columns.detail}, i.{RAW}
                    FROM incoming_quarantine i
                    WHERE NOT EXISTS (
                        SELECT 1 FROM quarantine q WHERE q.{_DS} = $dataset
                        AND q.{Columns.source_row} = i.{Columns.source_row}
                        AND q.{Columns.rule} = $prefix || i.{Columns.rule}
                        AND q.{RAW} = i.{RAW})""",
                {"batch": batch_id, "dataset": dataset, "prefix": prefix},
            )

    def _insert_batch(self, r: BatchReport) -> None:
        self._run(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                r.batch_id,
                r.dataset,
                r.origin,
                r.content_hash,
                datetime.fromisoformat(r.started_at),
                datetime.fromisoformat(r.finished_at),
                r.n_rows,
                r.n_valid,
                r.n_inserted,
                r.n_already_present,
                r.n_quarantined,
                r.status,
            ],
        )

    # ------------------------------------------------------------------ snapshot

    def export_snapshot(self, dataset: str, out_dir: Path) -> SnapshotManifest:
        """Write events.parquet, items.parquet and manifest.json for ``dataset`` into ``out_dir``.

        Files are written under temporary names and renamed, so a crash leaves the previous
        snapshot intact.
        """
        stats = self.con.execute(
            f"""SELECT count(*), count(DISTINCT {Columns.user}), count(DISTINCT {Columns.item}),
                       min({Columns.timestamp}), max({Columns.timestamp})
                FROM events WHERE {_DS} = ?""",
            [dataset],
        ).fetchall()[0]
        if stats[0] == 0:
            raise DataSourceError(f"{self.path}: dataset {dataset!r} has no events to export")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        events_hash = self._write(
            f"SELECT {_E} FROM events WHERE {_DS} = $dataset ORDER BY {', '.join(_SNAPSHOT_ORDER)}",
            dataset,
            EVENTS_SCHEMA,
            out_dir / EVENTS_FILE,
        )
        items_hash = self._write(self._items_query(), dataset, ITEMS_SCHEMA, out_dir / ITEMS_FILE)
        n_catalog = pq.read_metadata(out_dir / ITEMS_FILE).num_rows
        manifest = SnapshotManifest(
            dataset=dataset,
            n_events=int(stats[0]),
            n_users=int(stats[1]),
            n_items=int(stats[2]),
            n_catalog_items=int(n_catalog),
            time_min=pd.Timestamp(stats[3]).isoformat(),
            time_max=pd.Timestamp(stats[4]).isoformat(),
            content_hash=events_hash,
            items_content_hash=items_hash,
        )
        tmp = out_dir / f".{MANIFEST_FILE}.tmp"
        tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, out_dir / MANIFEST_FILE)
        return manifest

    @staticmethod
    def _items_query() -> str:
        """Items of the dataset plus an all-null row for each event item missing from items."""
        nulls = ", ".join(
            f"NULL::{'DOUBLE' if c == Columns.price else 'VARCHAR'} AS {c}"
            for c in ITEM_COLUMNS[1:]
        )
        return f"""
            SELECT {_I} FROM items WHERE {_DS} = $dataset
            UNION ALL
            SELECT DISTINCT e.{Columns.item}, {nulls} FROM events e
            WHERE e.{_DS} = $dataset AND NOT EXISTS (
                SELECT 1 FROM items i
                WHERE i.{_DS} = $dataset AND i.{Columns.item} = e.{Columns.item})
            ORDER BY {Columns.item}"""

    def _write(self, query: str, dataset: str, schema: pa.Schema, target: Path) -> str:
        """Stream a query to parquet (temp name, then rename) and return its content hash."""
        relation = self.con.sql(query, params={"dataset": dataset})
        # DuckDB 2.x names it to_arrow_reader; 1.x has fetch_arrow_reader
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader = to_reader(_BATCH_ROWS)
        reader = reader.cast(schema) if reader.schema != schema else reader
        tmp = target.with_name(f".{target.name}.tmp")
        hasher = ContentHasher(schema)
        # one row group is encoded and written on a thread while the next is fetched and
        # hashed (both sides release the GIL); at most two row groups are held at once
        with pq.ParquetWriter(tmp, schema) as writer, ThreadPoolExecutor(1) as pool:
            writing: Future[None] | None = None
            for group in _row_groups(reader, hasher):
                if writing is not None:
                    writing.result()
                writing = pool.submit(writer.write_table, group, row_group_size=_BATCH_ROWS)
            if writing is not None:
                writing.result()
        os.replace(tmp, target)
        return hasher.hexdigest()

    # ------------------------------------------------------------------ queries and deletes

    def delete_user(self, dataset: str, user_id: str) -> int:
        """GDPR erasure: remove the user's events (returned count) and quarantined raw rows."""
        self.con.begin()
        try:
            removed = self._run(
                f"DELETE FROM events WHERE {_DS} = ? AND {Columns.user} = ?", [dataset, user_id]
            )
            purged = self._run(
                f"""DELETE FROM quarantine WHERE {_DS} = ?
                    AND trim(json_extract_string({RAW}, '$.{Columns.user}')) = ?""",
                [dataset, user_id],
            )
            self.con.commit()
        except Exception:
            self.con.rollback()
            raise
        logger.info(
            "deleted user %r from %s: %d events, %d quarantined rows",
            user_id,
            dataset,
            removed,
            purged,
        )
        return removed

    def _user_quarantine_match(self) -> str:
        """Quarantined rows whose raw user field is the user (the raw row keeps file values)."""
        return f"trim(json_extract_string({RAW}, '$.{Columns.user}')) = $user"

    def user_rows(self, user_id: str) -> dict[str, pd.DataFrame]:
        """Everything the store holds about one user, in every dataset: `events` and
        `quarantine` rows with the batch (origin file, content hash) they came in."""
        batch_cols = "b.origin, b.content_hash, b.started_at AS ingested_at"
        join = f"LEFT JOIN batches b ON b.{_BATCH} = t.{_BATCH} AND b.{_DS} = t.{_DS}"
        events = self.con.execute(
            f"""SELECT t.*, {batch_cols} FROM events t {join}
                WHERE t.{Columns.user} = $user ORDER BY t.{Columns.timestamp}""",
            {"user": user_id},
        ).df()
        quarantine = self.con.execute(
            f"""SELECT t.*, {batch_cols} FROM quarantine t {join}
                WHERE {self._user_quarantine_match().replace(RAW, "t." + RAW)}
                ORDER BY t.{_BATCH}, t.{Columns.source_row}""",
            {"user": user_id},
        ).df()
        return {"events": events, "quarantine": quarantine}

    def erase_user(self, user_id: str) -> dict[str, int]:
        """GDPR erasure in every dataset, one transaction: events and quarantined rows deleted
        (counts returned). Deleted rows stay in the file's blocks until `compact`."""
        self.con.begin()
        try:
            counts = {
                "events": self._run(
                    f"DELETE FROM events WHERE {Columns.user} = $user", {"user": user_id}
                ),
                "quarantine": self._run(
                    f"DELETE FROM quarantine WHERE {self._user_quarantine_match()}",
                    {"user": user_id},
                ),
            }
            self.con.commit()
        except Exception:
            self.con.rollback()
            raise
        return counts

    def compact(self) -> None:
        """Rewrite the database file from its live rows (DuckDB keeps deleted rows' bytes in
        its blocks): copy into a new file, then replace the old one. The store reopens."""
        tmp = self.path.with_name(f".{self.path.name}.compact")
        tmp.unlink(missing_ok=True)
        self.con.close()
        con = duckdb.connect(str(tmp))
        try:
            copy_database_into(con, self.path)
        finally:
            con.close()
        os.replace(tmp, self.path)
        self.con = duckdb.connect(str(self.path))

    def counts(self, dataset: str) -> dict[str, int]:
        """events, users, items (events' distinct items), catalog_items, batches, quarantined."""
        row = self.con.execute(
            f"""SELECT
                (SELECT count(*) FROM events WHERE {_DS} = $d),
                (SELECT count(DISTINCT {Columns.user}) FROM events WHERE {_DS} = $d),
                (SELECT count(DISTINCT {Columns.item}) FROM events WHERE {_DS} = $d),
                (SELECT count(*) FROM items WHERE {_DS} = $d),
                (SELECT count(*) FROM batches WHERE {_DS} = $d),
                (SELECT count(*) FROM quarantine WHERE {_DS} = $d)""",
            {"d": dataset},
        ).fetchall()[0]
        keys = ("events", "users", "items", "catalog_items", "batches", "quarantined")
        return dict(zip(keys, (int(v) for v in row), strict=True))

    def batches(self, dataset: str) -> pd.DataFrame:
        return self.con.execute(
            f"SELECT * FROM batches WHERE {_DS} = ? ORDER BY {_BATCH}", [dataset]
        ).df()

    def quarantine_rows(self, batch_id: int | None = None) -> pd.DataFrame:
        where = "" if batch_id is None else f"WHERE {_BATCH} = ?"
        params = [] if batch_id is None else [batch_id]
        return self.con.execute(
            f"SELECT * FROM quarantine {where} "
            f"ORDER BY {_BATCH}, {Columns.source_row}, {Columns.rule}",
            params,
        ).df()

    def _drop_views(self) -> None:
        for name in ("incoming_events", "incoming_items", "incoming_quarantine", "duplicate_rows"):
            with suppress(duckdb.Error):
                self.con.unregister(name)

    def _scalar(self, query: str) -> Any:
        # fetchall, not fetchone: DuckDB 2 refuses new work while a result is half-fetched
        return self.con.execute(query).fetchall()[0][0]


def _row_groups(reader: pa.RecordBatchReader, hasher: ContentHasher) -> Iterator[pa.Table]:
    """The reader's batches (DuckDB hands out ~120k rows each), hashed in order and gathered
    into tables of at least `_BATCH_ROWS` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    for batch in reader:
        hasher.update(batch)
        pending.append(batch)
        if sum(len(b) for b in pending) >= _BATCH_ROWS:
            yield pa.Table.from_batches(pending)
            pending = []
    if pending:
        yield pa.Table.from_batches(pending)
