"""The ingest pipeline: load a source, validate, store in DuckDB, export a snapshot.

The caller (CLI / DVC stage) builds the source from config and passes paths; nothing here
reads Hydra config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.console import console as shared_console
from recops.data.sources.base import Source
from recops.data.store import ITEMS_RULE_PREFIX, BatchReport, EventStore, SnapshotManifest
from recops.data.validation import ValidationResult, validate_events, validate_items
from recops.errors import DataSourceError

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """The stored batch and the snapshot exported after it."""

    batch: BatchReport
    snapshot: SnapshotManifest

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch.to_dict(), "snapshot": self.snapshot.to_dict()}


def _format_rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule}={n}" for rule, n in counts.items())


def _log_quarantine(what: str, result: ValidationResult) -> None:
    n = result.counts["quarantined"]
    if n:
        logger.info("quarantined %d %s rows: %s", n, what, _format_rules(result.rule_counts))
    else:
        logger.info("quarantined 0 %s rows", what)


def rule_table(batch: BatchReport) -> Table:
    """Rich table of rows quarantined per rule (item rules prefixed with ``items:``)."""
    table = Table(title=f"Ingest of {batch.dataset!r}, batch {batch.batch_id}")
    table.add_column("rule")
    table.add_column("rows", justify="right")
    rows = [*batch.rule_counts.items()]
    rows += [(ITEMS_RULE_PREFIX + rule, n) for rule, n in batch.item_rule_counts.items()]
    for rule, n in rows or [("(none quarantined)", 0)]:
        table.add_row(rule, f"{n:,}")
    table.caption = (
        f"{batch.n_rows:,} rows: {batch.n_valid:,} valid, {batch.n_inserted:,} inserted, "
        f"{batch.n_already_present:,} already present, {batch.n_quarantined:,} quarantined"
    )
    return table


def _validate(
    source: Source,
    console: Console,
    raw_events: pd.DataFrame,
    raw_items: pd.DataFrame | None,
    origin: str,
) -> tuple[ValidationResult, ValidationResult | None]:
    with console.status(f"Validating {source.name} events..."):
        events = validate_events(raw_events, origin)
    _log_quarantine("event", events)
    if raw_items is None:
        return events, None
    with console.status(f"Validating {source.name} items..."):
        items = validate_items(raw_items, f"{origin} (items)")
    _log_quarantine("item", items)
    return events, items


def run_ingest(
    source: Source,
    dataset: str,
    db_path: Path,
    snapshot_dir: Path,
    console: Console | None = None,
) -> IngestReport:
    """Load -> validate -> store (idempotent) -> export snapshot; prints a per-rule table.

    Raises DataSourceError when the dataset ends up with no valid events at all (the failed
    batch and its quarantined rows stay in the store for inspection).
    """
    console = console or shared_console  # one console, so spinners and log lines interleave
    with console.status(f"Loading {source.name}..."):
        raw = source.load()
    logger.info("loaded %d event rows from %s", len(raw.events), raw.origin)
    events, items = _validate(source, console, raw.events, raw.items, raw.origin)
    with EventStore(db_path) as store:
        with console.status(f"Storing batch in {db_path}..."):
            batch = store.ingest(dataset, raw, events, items)
        console.print(rule_table(batch))
        if store.counts(dataset)["events"] == 0:
            raise DataSourceError(
                f"{raw.origin}: no valid events; all {batch.n_rows} rows quarantined "
                f"({_format_rules(batch.rule_counts)}), see quarantine of batch {batch.batch_id}"
            )
        with console.status(f"Exporting snapshot to {snapshot_dir}..."):
            snapshot = store.export_snapshot(dataset, Path(snapshot_dir))
    logger.info(
        "snapshot %s: %d events, %d users, %d items, hash %s",
        snapshot_dir,
        snapshot.n_events,
        snapshot.n_users,
        snapshot.n_items,
        snapshot.content_hash[:12],
    )
    return IngestReport(batch=batch, snapshot=snapshot)
