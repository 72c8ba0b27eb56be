"""The ingest pipeline: stream a source in bounded chunks, validate, store in DuckDB, export a
snapshot.

Memory is bounded by `data.ingest.chunk_rows` (raw and typed frames of two chunks at a time:
one validated while the one before is staged) plus DuckDB's `data.ingest.memory_limit` (the
staged batch spills to disk beyond it), not by the size of the source. A chunked ingest gives
exactly the rows and quarantine of a one-shot one: the rules are per row, and duplicates are
found over the whole batch in the store.

The caller (CLI / DVC stage) builds the source from config and passes paths; nothing here
reads Hydra config except `IngestSettings.from_config`, given the `data.ingest` mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from recops.console import console as shared_console
from recops.console import progress, step
from recops.data.sources.base import RawStream, Source, stream_of
from recops.data.store import (
    ITEMS_RULE_PREFIX,
    BatchReport,
    BatchWriter,
    EventStore,
    SnapshotManifest,
)
from recops.data.validation import (
    ValidationResult,
    ValidationSettings,
    duplicate_quarantine,
    log_counts,
    validate_events,
    validate_items,
)
from recops.errors import ConfigError, DataSourceError

logger = logging.getLogger(__name__)
DEFAULT_CHUNK_ROWS = 2_000_000


@dataclass(frozen=True)
class IngestSettings:
    """`data.ingest` in the config: chunk size, DuckDB memory cap and the validation rules."""

    chunk_rows: int = DEFAULT_CHUNK_ROWS
    memory_limit: str | None = None
    validation: ValidationSettings = field(default_factory=ValidationSettings)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> IngestSettings:
        given = dict(cfg or {})
        try:
            raw_rows = given.get("chunk_rows")
            chunk_rows = DEFAULT_CHUNK_ROWS if raw_rows is None else int(raw_rows)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"data.ingest.chunk_rows must be an integer, got {given.get('chunk_rows')!r}"
            ) from exc
        if chunk_rows < 1:
            raise ConfigError(f"data.ingest.chunk_rows must be >= 1, got {chunk_rows}")
        limit = given.get("memory_limit")
        return cls(chunk_rows, str(limit) if limit else None, ValidationSettings.from_config(given))


@dataclass
class IngestReport:
    """The stored batch and the snapshot exported after it."""

    batch: BatchReport
    snapshot: SnapshotManifest

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch.to_dict(), "snapshot": self.snapshot.to_dict()}


def _format_rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule}={n}" for rule, n in counts.items())


def _log_quarantine(what: str, n: int, rule_counts: dict[str, int]) -> None:
    if n:
        logger.info("quarantined %d %s rows: %s", n, what, _format_rules(rule_counts))
    else:
        logger.info("quarantined 0 %s rows", what)


def rule_table(batch: BatchReport) -> Table:
    """Rich table of rows quarantined per rule (item rules prefixed with ``items:``)."""
    # Text, not markup: a dataset name like "[/bold]" or ":x:" prints as it is
    table = Table(title=Text(f"Ingest of {batch.dataset!r}, batch {batch.batch_id}"))
    table.add_column("rule")
    table.add_column("rows", justify="right")
    rows = [*batch.rule_counts.items()]
    rows += [(ITEMS_RULE_PREFIX + rule, n) for rule, n in batch.item_rule_counts.items()]
    for rule, n in rows or [("(none quarantined)", 0)]:
        table.add_row(Text(rule), f"{n:,}")
    table.caption = (
        f"{batch.n_rows:,} rows: {batch.n_valid:,} valid, {batch.n_inserted:,} inserted, "
        f"{batch.n_already_present:,} already present, {batch.n_quarantined:,} quarantined"
    )
    return table


def _validate_items(stream: RawStream, settings: IngestSettings) -> ValidationResult | None:
    if stream.items is None:
        return None
    with step(f"validating {stream.label} items"):
        items = validate_items(stream.items, f"{stream.label} (items)", settings.validation)
    _log_quarantine("item", items.counts["quarantined"], items.rule_counts)
    return items


def _stage_events(batch: BatchWriter, stream: RawStream, settings: IngestSettings) -> None:
    """Validate chunk by chunk into the batch, then quarantine the batch's duplicates."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)  # one "future" cut-off for all chunks
    # a chunk is staged into DuckDB on a thread while the next one is validated (DuckDB
    # releases the GIL): at most two chunks are held at once, in source order
    with (
        progress(f"validating {stream.label} events", stream.n_rows, unit="rows") as bar,
        ThreadPoolExecutor(1) as stager,
    ):
        staging: Future[None] | None = None
        for chunk in stream.chunks():
            result = validate_events(
                chunk, stream.label, now=now, settings=settings.validation, dedupe=False
            )
            if staging is not None:
                staging.result()
            staging = stager.submit(batch.stage, result)
            bar.advance(len(chunk))
        if staging is not None:
            staging.result()
    with step("finding duplicate events in the batch"):
        dups = batch.duplicates()
    if len(dups):
        first_row = dict(zip(dups.iloc[:, 0].tolist(), dups.iloc[:, 1].tolist(), strict=True))
        with progress("quoting duplicate rows", stream.n_rows, unit="rows") as bar:
            for chunk in stream.chunks():  # a second pass: quote each repeated raw row
                batch.add_quarantine(duplicate_quarantine(chunk, first_row))
                bar.advance(len(chunk))
    log_counts(stream.label, "event", batch.counts)
    _log_quarantine(
        "event",
        batch.counts.get("quarantined", 0),
        {k: v for k, v in batch.counts.items() if k not in ("rows", "valid", "quarantined") and v},
    )


def run_ingest(
    source: Source,
    dataset: str,
    db_path: Path,
    snapshot_dir: Path,
    console: Console | None = None,
    settings: IngestSettings | None = None,
) -> IngestReport:
    """Stream -> validate -> store (idempotent) -> export snapshot; prints a per-rule table.

    Raises DataSourceError when the dataset ends up with no valid events at all (the failed
    batch and its quarantined rows stay in the store for inspection).
    """
    console = console or shared_console  # one console, so spinners and log lines interleave
    settings = settings or IngestSettings()
    with step(f"loading {source.name}"):
        stream = stream_of(source, settings.chunk_rows)
    logger.info("loading %s events from %s", stream.label, stream.origin)  # the one full origin
    items = _validate_items(stream, settings)
    with EventStore(db_path, settings.memory_limit) as store:
        with store.write_batch(dataset, stream.origin, stream.content_hash) as batch:
            _stage_events(batch, stream, settings)
            with step(f"inserting the batch into {db_path}"):
                report = batch.finish(items)
        console.print(rule_table(report))
        if store.counts(dataset)["events"] == 0:
            raise DataSourceError(
                f"{stream.label}: no valid events; all {report.n_rows} rows quarantined "
                f"({_format_rules(report.rule_counts)}), see quarantine of batch "
                f"{report.batch_id}"
            )
        with step(f"exporting snapshot to {snapshot_dir}"):
            snapshot = store.export_snapshot(dataset, Path(snapshot_dir))
    logger.info(
        "snapshot %s: %d events, %d users, %d items, hash %s",
        snapshot_dir,
        snapshot.n_events,
        snapshot.n_users,
        snapshot.n_items,
        snapshot.content_hash[:12],
    )
    return IngestReport(batch=batch.report, snapshot=snapshot)
