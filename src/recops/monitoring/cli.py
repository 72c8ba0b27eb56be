"""`recops drift`: compare two windows (or files) and print the per-feature verdicts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from recops.cli_support import exit_on_error
from recops.config import compose, resolve_path
from recops.console import console, setup_logging
from recops.monitoring.policy import ACTIONS

_BAND_STYLE = {"ok": "green", "plan_retrain": "yellow", "retrain_soon": "dark_orange"}


def drift_command(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Hydra overrides, e.g. drift.threshold=0.25")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="window (first:42d, a..b, all) or snapshot path [drift.reference]"),
    ] = None,
    current: Annotated[
        str | None,
        typer.Option(help="window (last:14d, a..b) or events file [drift.current]"),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(help="exit with status 2 when the action is at least this one"),
    ] = None,
) -> None:
    """Drift report (Evidently, PSI) of current vs reference: HTML + summary.json + MLflow.

    e.g. `recops drift --reference first:42d --current last:14d`, or
    `--current data/incoming/week9.csv` (read through the `worker.file` mapping).
    """
    from recops.monitoring.outputs import REPORT_FILE
    from recops.monitoring.settings import DriftSettings
    from recops.monitoring.stage import drift_cli

    if fail_on is not None and fail_on not in ACTIONS:
        raise typer.BadParameter(f"--fail-on must be one of {', '.join(ACTIONS)}")
    setup_logging()
    with exit_on_error():
        cfg = compose(overrides or [])
        summary = drift_cli(cfg, reference, current)
    console.print(summary_table(summary))
    console.print(
        f"report: {resolve_path(DriftSettings.from_config(cfg).output_dir) / REPORT_FILE}",
        soft_wrap=True,
    )
    if fail_on is not None and ACTIONS.index(summary["action"]) >= ACTIONS.index(fail_on):
        raise typer.Exit(2)


def summary_table(summary: dict[str, Any]) -> Table:
    ref, cur = summary["reference"], summary["current"]
    table = Table(
        title=f"Drift: {cur['spec']} ({cur['n_events']:,} events) "
        f"vs {ref['spec']} ({ref['n_events']:,} events)"
    )
    for name, justify in (("feature", "left"), ("PSI", "right"), ("threshold", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("drifted")
    table.add_column("band")
    for name, result in summary["features"].items():
        psi = result.get("psi")
        band = result["band"]
        table.add_row(
            name,
            "-" if psi is None else f"{psi:.3f}",
            f"{result['threshold']:g}",
            "skipped" if result.get("skipped") else ("yes" if result["drifted"] else "no"),
            f"[{_BAND_STYLE.get(band, 'red')}]{band}[/]",
        )
    stats = ", ".join(f"{k}={v:.3f}" for k, v in summary["stats"].items() if v is not None)
    table.caption = (
        f"action: {summary['action']}  |  {stats}  |  MLflow run: {summary.get('mlflow_run_id')}"
    )
    return table
