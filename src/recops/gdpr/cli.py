"""`recops gdpr export-user | delete-user | purge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from recops.cli_support import exit_on_error
from recops.config import compose, find_project_root
from recops.console import console, escape, setup_logging

gdpr_app = typer.Typer(
    help="Data rights: export or erase one user's data across every store RecOps writes.",
    no_args_is_help=True,
)
Overrides = Annotated[
    list[str] | None, typer.Argument(help="Hydra overrides, e.g. data=movielens_small")
]
UserId = Annotated[str, typer.Option("--user-id", help="the user's external id")]


class Retrain(StrEnum):
    now = "now"
    next_cycle = "next-cycle"


def _setup(overrides: list[str] | None) -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    setup_logging()
    return compose(overrides or [])


@gdpr_app.command("export-user")
def export_user_command(
    user_id: UserId,
    output: Annotated[Path, typer.Option(help="JSON file to write")] = Path("user-export.json"),
    overrides: Overrides = None,
) -> None:
    """Everything RecOps holds about one user, as one JSON document (+ a summary here)."""
    from recops.gdpr.export import export_user

    cfg = _setup(overrides)
    with exit_on_error():
        document = export_user(cfg, user_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    store, recs = document["store"], document["recommendations"]
    lines = [
        f"user {escape(user_id)}" + (" [bold](erased)[/]" if document["erased"] else ""),
        f"  events: {len(store['events'])}, quarantined rows: {len(store['quarantine'])}",
        f"  batches: {_origins(store['events'] + store['quarantine'])}",
        "  trained into: "
        + (
            ", ".join(f"v{v['version']} ({v['model_type']})" for v in document["model_versions"])
            or "no registered version"
        ),
        f"  files holding the id: {len(document['files'])}",
        f"  recommendations: {len(recs.get('items') or [])} from {recs.get('source')}"
        + (f" (v{recs['version']} @{recs['alias']})" if recs.get("version") else ""),
        f"wrote {escape(str(output))}",
    ]
    console.print("\n".join(lines), soft_wrap=True)


def _origins(rows: list[dict[str, Any]]) -> str:
    names = sorted({f"{r.get('batch_id')}:{Path(str(r.get('origin'))).name}" for r in rows})
    return escape(", ".join(names)) if names else "-"


@gdpr_app.command("delete-user")
def delete_user_command(
    user_id: UserId,
    reason: Annotated[str, typer.Option(help="why (audited)")] = "data subject request",
    retrain: Annotated[
        Retrain | None,
        typer.Option(help="versions that cannot be redacted exactly: retrain now or next cycle"),
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Erase one user from the store, derived files, registered versions and the live service."""
    from recops.gdpr.erase import delete_user
    from recops.gdpr.settings import GdprSettings

    cfg = _setup(overrides)
    with exit_on_error():
        report = delete_user(cfg, user_id, reason)
    store = report.store
    again = report.repeat and not report.touched
    note = " (already erased before: nothing left to remove)" if again else ""
    console.print(f"erased user {escape(user_id)} as {report.user_hash[:19]}…{note}")
    console.print(f"  store: {store['events']} events, {store['quarantine']} quarantined rows")
    for touched in report.files:
        console.print(f"  {touched['kind']}: {escape(touched['path'])} (-{touched['rows']})")
    for hit in report.versions:
        state = "redacted" if hit["redacted"] else "not redacted"
        console.print(f"  v{hit['version']} {hit['model_type']}: {state}, erasure={hit['erasure']}")
    if report.retrain:
        console.print(f"  retrain requested: {escape(report.retrain['reason'])}", soft_wrap=True)
    for path in report.remaining:
        console.print(f"  [yellow]still holds the id:[/] {escape(path)} (see `recops gdpr purge`)")
    with exit_on_error():
        configured = GdprSettings.from_config(cfg, find_project_root()).retrain
    mode = (retrain or Retrain(configured)).value
    if report.retrain and mode == Retrain.now.value:
        _retrain_now(list(overrides or []))


def _retrain_now(overrides: list[str]) -> None:
    """One worker cycle in its own process (it takes the worker lock and honours the
    request); if it fails the request stays for the running worker's next cycle."""
    console.print("retraining now: `recops worker run --once`")
    cmd = [sys.executable, "-m", "recops.cli", "worker", "run", "--once", *overrides]
    if subprocess.run(cmd, check=False).returncode != 0:
        console.print("[red]the retrain cycle failed[/]: the worker's next cycle retries it")
        raise typer.Exit(1)


@gdpr_app.command("purge")
def purge_command(overrides: Overrides = None) -> None:
    """Remove copies an erasure leaves: DVC cache, deleted MLflow runs, interrupted rewrites."""
    from recops.gdpr.erase import owned_roots
    from recops.gdpr.purge import purge
    from recops.gdpr.settings import GdprSettings
    from recops.tracking.store import configure_tracking

    cfg = _setup(overrides)
    with exit_on_error():
        root = find_project_root()
        settings = GdprSettings.from_config(cfg, root)
        uri = configure_tracking(root)
        report = purge(settings, uri, owned_roots(settings, uri))
    for step in report.steps:
        console.print(f"{escape(step['step'])}: {escape(step['outcome'])}")
