"""`recops validate`: the data-quality report before training (exit 2 when a threshold fails)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recops.cli_support import exit_on_error
from recops.config import compose, find_project_root, resolve_path
from recops.console import console, escape, setup_logging

FAILED_EXIT = 2


def validate_command(
    file: Annotated[
        Path | None,
        typer.Option(help="a raw events file (read like `worker.file`); default: the store"),
    ] = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE fails above, NAME<VALUE below, e.g. duplicates=0"),
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="Hydra overrides")] = None,
) -> None:
    """Data-quality report: duplicates, nulls, malformed values, time range, history,
    coverage, cold share, event mix, quarantine (reports/validation/)."""
    from recops.monitoring.stage import file_mapping
    from recops.paths import dataset_key
    from recops.quality.checks import Limits
    from recops.quality.report import parse_thresholds, validate
    from recops.quality.settings import QualitySettings

    setup_logging()
    with exit_on_error():
        cfg = compose(overrides or [])
        q = QualitySettings.from_config(cfg)
        mapping = file_mapping(cfg)
        root = find_project_root()
        limits = Limits(
            min_user_events=q.min_user_events,
            min_item_events=q.min_item_events,
            window_days=q.window_days,
            future_tolerance_hours=q.future_tolerance_hours,
            timestamp_unit=str(mapping["timestamp_unit"]),
        )
        result = validate(
            store=resolve_path(str(cfg.paths.duckdb), root),
            dataset=dataset_key(cfg.data),
            file=file,
            mapping=mapping,
            limits=limits,
            thresholds=parse_thresholds(list(fail_on or []), q.fail_on),
            output_dir=resolve_path(q.output_dir, root),
            sample_rows=q.sample_rows,
        )
    print_result(result.to_dict(), resolve_path(q.output_dir, root))
    if not result.passed:
        raise typer.Exit(FAILED_EXIT)


def print_result(report: dict[str, Any], output_dir: Path) -> None:
    table = Table(title=f"data quality: {escape(report['source'])}")
    for column in ("check", "value", "threshold"):
        table.add_column(column)
    for name, value in report["checks"].items():
        limit = report["thresholds"].get(name, "")
        shown = f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
        table.add_row(escape(name), shown, escape(limit))
    console.print(table)
    columns = Table(title="per column")
    for column in ("column", "null", "null share", "malformed", "malformed share"):
        columns.add_column(column)
    for name, c in report["columns"].items():
        columns.add_row(
            escape(name),
            f"{c['null']:,}",
            f"{c['null_share']:.2%}",
            f"{c['malformed']:,}",
            f"{c['malformed_share']:.2%}",
        )
    console.print(columns)
    ts = report["timestamps"]
    console.print(f"time range: {ts['min']} .. {ts['max']} ({ts['future']} in the future)")
    mix = ", ".join(f"{escape(k)} {v:.1%}" for k, v in report["event_types"].items())
    console.print(f"event types: {mix or '-'}", soft_wrap=True)
    rules = report["extra"].get("quarantine_by_rule") or {}
    if rules:
        console.print("quarantine: " + ", ".join(f"{escape(k)} {v:,}" for k, v in rules.items()))
    for failure in report["failures"]:
        console.print(f"[bold red]failed:[/] {escape(failure)}", soft_wrap=True)
    verdict = "[green]passed[/]" if report["passed"] else "[bold red]FAILED[/]"
    console.print(f"{verdict}; reports (JSON, HTML) in {escape(str(output_dir))}", soft_wrap=True)
