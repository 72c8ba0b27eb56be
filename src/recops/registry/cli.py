"""CLI of the registry lifecycle: `recops promote`, `recops rollback` and the `recops registry`
sub-commands (list, diff, prune, restore, audit). Each takes Hydra overrides at the end,
e.g. `recops registry list registry.model_name=other`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recops.cli_support import exit_on_error
from recops.config import compose
from recops.console import setup_logging

if TYPE_CHECKING:  # heavy imports stay out of `recops --help`
    from recops.registry.comparison import GateResult
    from recops.registry.lifecycle import MoveResult, Registry

registry_app = typer.Typer(
    help="Inspect and maintain the model registry (versions, diffs, retention, audit).",
    no_args_is_help=True,
)
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra overrides, e.g. registry.model_name=other paths.reports_dir=out"),
]
Reason = Annotated[str | None, typer.Option(help="why (required with --force; audited)")]
Force = Annotated[bool, typer.Option("--force", help="move even if gates fail (needs --reason)")]


class Target(StrEnum):
    challenger = "challenger"
    champion = "champion"


def stdout() -> Console:
    """Tables go to stdout, wide enough not to wrap when piped."""
    return Console(width=None if sys.stdout.isatty() else 200)


def open_registry(overrides: list[str] | None) -> Registry:
    from recops.registry.lifecycle import Registry
    from recops.tracking.store import configure_tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    setup_logging()
    cfg = compose(overrides or [])
    configure_tracking()
    return Registry(cfg)


def gate_table(results: list[GateResult]) -> Table:
    table = Table(title="gates")
    table.add_column("gate")
    table.add_column("result")
    table.add_column("detail")
    for r in results:
        table.add_row(r.name, "[green]pass[/]" if r.passed else "[red]FAIL[/]", r.detail)
    return table


@contextmanager
def show_refused_gates() -> Iterator[None]:
    """On a refusal, the gate table before the one-line error."""
    from recops.registry.lifecycle import GatesRefused

    try:
        yield
    except GatesRefused as exc:
        stdout().print(gate_table(exc.results))
        raise


def print_move(result: MoveResult) -> None:
    out = stdout()
    if result.gates:
        out.print(gate_table(result.gates))
    out.print(result.record.summary())


def promote(
    version: Annotated[str, typer.Option("--version", "-v", help="version number or alias")],
    to: Annotated[Target, typer.Option("--to", help="the alias to move to this version")],
    force: Force = False,
    reason: Reason = None,
    overrides: Overrides = None,
) -> None:
    """Promote a version: candidate -> challenger -> champion, through the gates.

    A failing gate refuses the move and names the gate; `--force --reason "..."` moves it
    anyway (audited). The champion replaced is remembered for `recops rollback`.
    """
    with exit_on_error():
        registry = open_registry(overrides)
        with show_refused_gates():
            print_move(registry.promote(version, to.value, force, reason))


def rollback(force: Force = False, reason: Reason = None, overrides: Overrides = None) -> None:
    """Put the previous champion back (again: further back). Never loads the current one."""
    with exit_on_error():
        registry = open_registry(overrides)
        with show_refused_gates():
            print_move(registry.rollback(force, reason))


@registry_app.command("list")
def list_versions(
    show_all: Annotated[bool, typer.Option("--all", help="include archived versions")] = False,
    limit: Annotated[int, typer.Option(help="at most this many versions")] = 50,
    overrides: Overrides = None,
) -> None:
    """Versions, newest first: model type, key metrics, data snapshot, aliases, age."""
    from recops.registry.views import list_table, version_rows

    with exit_on_error():
        registry = open_registry(overrides)
        registry.try_sync()
        rows = version_rows(registry.client, registry.settings, show_all, limit)
        stdout().print(list_table(rows, registry.settings))


@registry_app.command()
def diff(
    a: Annotated[str, typer.Argument(help="version or alias, e.g. 3 or champion")],
    b: Annotated[str, typer.Argument(help="version or alias")],
    show_all: Annotated[bool, typer.Option("--all", help="also identical params")] = False,
    overrides: Overrides = None,
) -> None:
    """Provenance, params (differing only, unless --all) and metrics of two versions."""
    from recops.registry.views import diff_tables, diff_versions

    with exit_on_error():
        registry = open_registry(overrides)
        registry.try_sync()
        out = stdout()
        for table in diff_tables(diff_versions(registry.client, registry.name, a, b, show_all)):
            out.print(table)


@registry_app.command()
def prune(
    keep: Annotated[int, typer.Option("--keep", help="newest versions to keep")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show the plan")] = False,
    overrides: Overrides = None,
) -> None:
    """Archive old versions (tag `recops.archived`; never aliased ones or recent champions)."""
    from recops.registry.retention import prune as prune_versions

    with exit_on_error():
        registry = open_registry(overrides)
        plan = prune_versions(registry, keep, dry_run)
        table = Table(title="prune plan (dry run)" if dry_run else "pruned")
        table.add_column("version", justify="right")
        table.add_column("action")
        for version, why in sorted(plan.keep.items(), key=lambda kv: -int(kv[0])):
            table.add_row(f"v{version}", f"keep: {why}")
        verb = "would archive" if dry_run else "archived"
        for version in plan.archive:
            table.add_row(f"v{version}", f"[yellow]{verb}[/]")
        stdout().print(table)


@registry_app.command()
def restore(
    version: Annotated[str, typer.Argument(help="archived version")],
    reason: Reason = None,
    overrides: Overrides = None,
) -> None:
    """Un-archive a version pruned earlier."""
    from recops.registry.retention import restore as restore_version

    with exit_on_error():
        stdout().print(restore_version(open_registry(overrides), version, reason).summary())


@registry_app.command()
def audit(
    limit: Annotated[int, typer.Option(help="last N records")] = 20,
    overrides: Overrides = None,
) -> None:
    """The audit trail (newest last) and the champion history."""
    from recops.registry.history import read_history

    with exit_on_error():
        registry = open_registry(overrides)
        registry.try_sync()
        table = Table(title=f"audit log: {registry.audit.path}")
        for column in ("at", "actor", "action", "alias", "from", "to", "forced", "reason"):
            table.add_column(column)
        for r in registry.audit.read(limit):
            cells = [r["at"], r["actor"], r["action"], r.get("alias") or ""]
            cells += [_v(r.get("from_version")), _v(r.get("to_version"))]
            table.add_row(*cells, "yes" if r.get("forced") else "", r.get("reason", ""))
        out = stdout()
        out.print(table)
        past = " -> ".join(f"v{v}" for v in read_history(registry.client, registry.name))
        champion = registry.aliases().get(registry.settings.champion_alias)
        out.print(f"champion history: {past or '(none)'} -> now {_v(champion)}")


def _v(version: str | None) -> str:
    return f"v{version}" if version else "–"
