"""`recops validate`: measure (`checks.py`), judge against thresholds, write the reports.

`reports/validation/report.json` holds every measure and the verdict; `report.html` is
Evidently's `DataSummaryPreset` over a sample of the parsed rows (the counts in the JSON are
exact SQL over all rows). A threshold `name=V` (or `name>V`) fails when the measure is above
V, `name<V` when it is below.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from recops.console import step
from recops.errors import ConfigError, DataSourceError
from recops.quality.checks import (
    Limits,
    Measures,
    measure,
    raw_view_from_file,
    raw_view_from_store,
    store_context,
)

_THRESHOLD = re.compile(r"^\s*([a-z_]+)\s*(<|>|=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Threshold:
    name: str
    op: str  # ">" fails above, "<" fails below
    limit: float

    def fails(self, value: float) -> bool:
        return value < self.limit if self.op == "<" else value > self.limit

    def describe(self) -> str:
        return f"{'>=' if self.op == '<' else '<='} {self.limit:g}"


def parse_thresholds(items: list[str], defaults: dict[str, Any]) -> list[Threshold]:
    """`--fail-on` items over the configured `quality.fail_on` (name: limit, fails above)."""
    merged: dict[str, Threshold] = {
        str(k): Threshold(str(k), ">", float(v)) for k, v in (defaults or {}).items()
    }
    for item in items:
        match = _THRESHOLD.match(item)
        if not match:
            raise ConfigError(
                f"--fail-on {item!r}: expected NAME=VALUE (fails above) or NAME<VALUE "
                "(fails below), e.g. duplicates=0 or item_metadata_coverage<0.9"
            )
        name, op, value = match.groups()
        merged[name] = Threshold(name, "<" if op == "<" else ">", float(value))
    return list(merged.values())


@dataclass
class Validation:
    source: str
    generated_at: str
    measures: Measures
    thresholds: list[Threshold]
    failures: list[str] = field(default_factory=list)
    report_html: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "source": self.source,
            "generated_at": self.generated_at,
            "passed": self.passed,
            "failures": self.failures,
            "thresholds": {t.name: f"{t.op}{t.limit:g}" for t in self.thresholds},
            **asdict(self.measures),
            "report_html": self.report_html,
        }


def judge(measures: Measures, thresholds: list[Threshold]) -> list[str]:
    failures = []
    for t in thresholds:
        if t.name not in measures.checks:
            known = ", ".join(sorted(measures.checks))
            raise ConfigError(f"--fail-on {t.name}: unknown check; known: {known}")
        value = measures.checks[t.name]
        if t.fails(value):
            failures.append(f"{t.name}={value:g} (allowed {t.describe()})")
    return failures


def validate(
    store: Path,
    dataset: str,
    file: Path | None,
    mapping: dict[str, Any],
    limits: Limits,
    thresholds: list[Threshold],
    output_dir: Path,
    sample_rows: int,
) -> Validation:
    """Measure a raw events file (or the store's events of `dataset`) and write the reports."""
    has_store = store.exists()
    if file is None and not has_store:
        raise DataSourceError(f"{store}: no event store to validate; pass --file or ingest first")
    if file is not None and not file.is_file():
        raise DataSourceError(f"{file}: no such file")
    con = duckdb.connect(str(store), read_only=True) if has_store else duckdb.connect()
    try:
        with step("measuring data quality"):
            if file is not None:
                fmt = _format(file, str(mapping.get("format", "auto")))
                try:
                    raw_view_from_file(con, file, dict(mapping.get("columns") or {}), fmt)
                except duckdb.Error as exc:
                    raise DataSourceError(f"{file}: cannot be read: {exc}") from exc
            else:
                raw_view_from_store(con, dataset)
            measures = measure(con, limits)
            if has_store:
                store_context(con, dataset, measures)
        sample = con.execute(f"SELECT * FROM parsed USING SAMPLE {int(sample_rows)} ROWS").df()
    finally:
        con.close()
    result = Validation(
        source=str(file) if file else f"store {store.name}: dataset {dataset}",
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        measures=measures,
        thresholds=thresholds,
        failures=judge(measures, thresholds),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    with step("Evidently data summary"):
        result.report_html = _summary_html(sample, output_dir / "report.html")
    _write(output_dir / "report.json", json.dumps(result.to_dict(), indent=2, default=str))
    return result


def _format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    return "tsv" if ".tsv" in suffixes else "csv"


def _summary_html(sample: pd.DataFrame, target: Path) -> str | None:
    """Evidently's DataSummaryPreset over the sampled rows (typed), as one HTML page."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataSummaryPreset

    if sample.empty:
        return None
    frame = pd.DataFrame(
        {
            "user_id": sample["user_id"],
            "item_id": sample["item_id"],
            "event_type": sample["event_type"],
            "timestamp": pd.to_datetime(sample["ts"]),
            "value": pd.to_numeric(sample["value"], errors="coerce"),
            "weight": pd.to_numeric(sample["weight"], errors="coerce"),
        }
    )
    frame = frame.loc[:, frame.notna().any()]  # a column absent from the source says nothing
    definition = DataDefinition(
        categorical_columns=[c for c in ("user_id", "item_id", "event_type") if c in frame],
        numerical_columns=[c for c in ("value", "weight") if c in frame],
        datetime_columns=[c for c in ("timestamp",) if c in frame],
    )
    snapshot = Report([DataSummaryPreset()]).run(
        current_data=Dataset.from_pandas(frame, data_definition=definition)
    )
    tmp = target.with_name(f".{target.name}.tmp")
    snapshot.save_html(str(tmp))
    os.replace(tmp, target)
    return target.name


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
