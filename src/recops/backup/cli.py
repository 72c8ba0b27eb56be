"""`recops backup create | verify | restore`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recops.cli_support import exit_on_error
from recops.config import compose
from recops.console import console, escape, setup_logging

backup_app = typer.Typer(
    help="Back up a running project, verify a backup, restore it into a new folder.",
    no_args_is_help=True,
)
Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides")]


@backup_app.command("create")
def create(
    to: Annotated[Path | None, typer.Option(help="folder of backups (default backup.dir)")] = None,
    keep: Annotated[int | None, typer.Option(help="keep the newest N backups there")] = None,
    overrides: Overrides = None,
) -> None:
    """A consistent backup, safe while the worker and the service run."""
    from recops.backup.create import create_backup
    from recops.backup.manifest import Manifest

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    setup_logging()
    with exit_on_error():
        path = create_backup(compose(overrides or []), to, keep)
    manifest = Manifest.read(path)
    champion = manifest.champion
    console.print(
        f"backup {escape(str(path))}: {len(manifest.files)} files"
        + (f", champion v{champion['version']}" if champion else ", no champion"),
        soft_wrap=True,
    )
    for note in manifest.notes:
        console.print(f"  note: {escape(note)}", soft_wrap=True)


@backup_app.command("verify")
def verify(backup: Annotated[Path, typer.Argument(help="a backup folder")]) -> None:
    """Checksums of every file, integrity of each database; names what is wrong (exit 1)."""
    from recops.backup.restore import verify_backup

    setup_logging()
    problems = verify_backup(backup)
    for problem in problems:
        console.print(f"[bold red]corrupted:[/] {escape(problem)}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"{escape(str(backup))}: ok")


@backup_app.command("restore")
def restore(
    backup: Annotated[Path, typer.Argument(help="a backup folder")],
    into: Annotated[Path, typer.Option(help="new or empty folder for the restored project")],
) -> None:
    """Rebuild a working project from a verified backup."""
    from recops.backup.restore import restore_backup

    setup_logging()
    with exit_on_error():
        result = restore_backup(backup, into)
    champion = result["champion"]
    console.print(
        f"restored {result['files']} files into {escape(result['into'])}"
        + (f"; champion v{champion['version']}" if champion else ""),
        soft_wrap=True,
    )
    console.print(
        f"serve it: cd {escape(result['into'])} && "
        f"MLFLOW_TRACKING_URI=sqlite:///{escape(result['into'])}/mlflow.db make serve",
        soft_wrap=True,
    )
