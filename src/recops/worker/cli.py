"""`recops worker run|status|stop`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from recops.cli_support import exit_on_error
from recops.config import compose
from recops.console import console, setup_logging

worker_app = typer.Typer(
    help="Continuous training: ingest dropped files, check drift, retrain, promote.",
    no_args_is_help=True,
)
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra overrides, e.g. worker.poll_interval=30 worker.fold_in=true"),
]


@worker_app.command("run")
def run(
    overrides: Overrides = None,
    once: Annotated[bool, typer.Option("--once", help="run one cycle and exit (cron)")] = False,
) -> None:
    """Run cycles every `worker.poll_interval` until `recops worker stop` (or SIGTERM)."""
    from recops.worker.runner import run_worker

    setup_logging()
    with exit_on_error():
        records = run_worker(compose(overrides or []), once=once, on_cycle=_print_cycle)
    if once and records and records[-1].outcome == "failed":
        raise typer.Exit(1)


def _print_cycle(record: Any) -> None:
    detail = ""
    if record.training_mode:
        target = record.promoted_to or "candidate only"
        mode = f"{record.training_mode} ({record.retrain_reason})"
        detail = f" — {mode}: v{record.model_version} -> {target}"
    elif record.action:
        detail = f" — drift {record.action}"
    if record.error:
        detail = f" — {record.error}"
    console.print(
        f"cycle {record.cycle}: [bold]{record.outcome}[/]{detail} "
        f"({record.n_ingested_files}/{record.n_files} files ingested, "
        f"{record.n_inserted:,} events, {record.seconds:.1f} s)",
        soft_wrap=True,
    )


@worker_app.command("status")
def status(
    overrides: Overrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Last cycle, next due, files waiting in the incoming folder."""
    from recops.worker.runner import worker_status

    with exit_on_error():
        info = worker_status(compose(overrides or []))
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    last = info["last_cycle"] or {}
    state = f"running (pid {info['pid']})" if info["running"] else "not running"
    console.print(f"worker: {state}; {info['cycles']} cycles so far")
    if current := info["current_cycle"]:
        console.print(f"current cycle: {current['cycle']} since {current['started_at']}")
    if last:
        console.print(
            f"last cycle: {last.get('cycle')} at {last.get('finished_at')}: {last.get('outcome')}"
            + (f" ({last['error']})" if last.get("error") else ""),
            soft_wrap=True,
        )
    console.print(f"next cycle due: {info['next_cycle_due'] or '-'}")
    console.print(f"next scheduled retrain: {info['next_scheduled_retrain'] or '-'}")
    console.print(
        f"trained through batch {info['trained_through_batch']}, "
        f"checked through batch {info['checked_through_batch']}"
    )
    queue = info["queue"]
    console.print(
        f"queue: {len(queue)} file(s) waiting in {info['incoming_dir']}"
        + (": " + ", ".join(queue) if queue else ""),
        soft_wrap=True,
    )


@worker_app.command("stop")
def stop(
    overrides: Overrides = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the cycle to end")] = 600.0,
) -> None:
    """Ask the running worker to stop (SIGTERM: it finishes its current cycle first)."""
    from recops.worker.runner import stop_worker

    with exit_on_error():
        pid = stop_worker(compose(overrides or []), timeout)
    console.print("no worker running" if pid is None else f"worker pid {pid} stopped")
