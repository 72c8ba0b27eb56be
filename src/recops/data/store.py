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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recops.columns import EVENT_COLUMNS, ITEM_COLUMNS, Columns
from recops.data.hashing import ContentHasher
from recops.data.schema import EVENTS_SCHEMA, ITEMS_SCHEMA, QUARANTINE_SCHEMA, STORE_DDL
from recops.data.sources.base import RawData
from recops.data.validation import RAW, ValidationResult
from recops.errors import DataSourceError

logger = logging.getLogger(__name__)

ITEMS_RULE_PREFIX = "items:"  # quarantine.rule of item rows, e.g. "items:bad_price"
EVENTS_FILE, ITEMS_FILE, MANIFEST_FILE = "events.parquet", "items.parquet", "manifest.json"
_BATCH_ROWS = 1_000_000

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


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def _count(rows: list[tuple[Any, ...]]) -> int:
    """The row count a DuckDB INSERT/DELETE returns, as fetched with fetchall()."""
    return int(rows[0][0]) if rows else 0


class EventStore:
    """DuckDB-backed store of events/items per dataset, with batch bookkeeping and snapshots."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
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
        batch_id = int(self._scalar("SELECT nextval('batch_id_seq')"))
        started = _now()
        report = BatchReport(
            batch_id=batch_id,
            dataset=dataset,
            origin=raw.origin,
            content_hash=raw.content_hash,
            started_at=started.isoformat(),
            finished_at="",
            n_rows=validation.counts["rows"],
            n_valid=len(validation.valid),
            n_inserted=0,
            n_already_present=0,
            n_quarantined=len(validation.quarantine),
            status="failed",
            rule_counts=validation.rule_counts,
        )
        if items_validation is not None:
            report.n_items = len(items_validation.valid)
            report.n_items_quarantined = len(items_validation.quarantine)
            report.item_rule_counts = items_validation.rule_counts
        self.con.begin()
        try:
            report.n_inserted = self._insert_events(dataset, batch_id, validation.valid)
            report.n_already_present = report.n_valid - report.n_inserted
            self._insert_quarantine(dataset, batch_id, validation.quarantine, "")
            if items_validation is not None:
                self._upsert_items(dataset, batch_id, items_validation.valid)
                self._insert_quarantine(
                    dataset, batch_id, items_validation.quarantine, ITEMS_RULE_PREFIX
                )
            report.status, report.finished_at = "ok", _now().isoformat()
            self._insert_batch(report)
            self.con.commit()
        except Exception:
            self.con.rollback()
            self._drop_views()
            report.n_inserted = report.n_already_present = 0
            report.finished_at = _now().isoformat()
            report.status = "failed"
            self._insert_batch(report)  # its own (auto-commit) transaction
            raise
        logger.info(
            "batch %d (%s): %d inserted, %d already present, %d quarantined",
            batch_id,
            dataset,
            report.n_inserted,
            report.n_already_present,
            report.n_quarantined,
        )
        return report

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

    def _insert_events(self, dataset: str, batch_id: int, valid: pd.DataFrame) -> int:
        matches = " AND ".join(f"e.{c} = i.{c}" for c in _EVENT_KEY)
        with self._registered("incoming_events", _arrow(valid, EVENTS_SCHEMA)):
            return self._run(
                f"""INSERT INTO events
                    SELECT $dataset, {", ".join(f"i.{c}" for c in EVENT_COLUMNS)}, $batch
                    FROM incoming_events i
                    WHERE NOT EXISTS (
                        SELECT 1 FROM events e WHERE e.{_DS} = $dataset AND {matches})""",
                {"dataset": dataset, "batch": batch_id},
            )

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
    ) -> None:
        if quarantine.empty:
            return
        with self._registered("incoming_quarantine", _arrow(quarantine, QUARANTINE_SCHEMA)):
            self._run(
                f"""INSERT INTO quarantine SELECT $batch, $dataset, {Columns.source_row},
                        $prefix || {Columns.rule}, {Columns.detail}, {RAW}
                    FROM incoming_quarantine""",
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
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                hasher.update(batch)
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
            target = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(f"ATTACH '{self.path}' AS old (READ_ONLY)")
            con.execute(f'COPY FROM DATABASE old TO "{target}"')
            con.execute("DETACH old")
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
        for name in ("incoming_events", "incoming_items", "incoming_quarantine"):
            with suppress(duckdb.Error):
                self.con.unregister(name)

    def _scalar(self, query: str) -> Any:
        # fetchall, not fetchone: DuckDB 2 refuses new work while a result is half-fetched
        return self.con.execute(query).fetchall()[0][0]
