"""`recops bento ...`: package the champion for BentoML and precompute its answers."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recops.cli_support import exit_on_error
from recops.config import compose, find_project_root, to_dict
from recops.console import console, setup_logging
from recops.serving.config import ServeConfig

bento_app = typer.Typer(
    help="Serve with BentoML: build a bento of the champion, precompute answers.",
    no_args_is_help=True,
    add_completion=False,
)
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra overrides, e.g. serve.precompute.k=100 serve.min_history=5"),
]
Alias = Annotated[
    str | None, typer.Option(help="registry alias to package (default: serve.alias, champion)")
]


def serve_config(overrides: list[str] | None) -> ServeConfig:
    return ServeConfig.from_mapping(to_dict(compose(overrides or []).serve))


@bento_app.command()
def build(
    overrides: Overrides = None,
    alias: Alias = None,
    precompute: Annotated[
        bool, typer.Option(help="pack a precomputed top-k table (if serve.precompute.enabled)")
    ] = True,
) -> None:
    """Import the champion into the BentoML model store and build the bento (bentos/).

    BentoML's store is $BENTOML_HOME (default: <project>/bentoml_home). The bento serves the
    packaged model with no registry: `bentoml serve recops:latest`.
    """
    from recops.serving.bento import build_bento, import_model, use_bentoml_home

    setup_logging()
    with exit_on_error():
        root = find_project_root()
        home = use_bentoml_home(root)
        cfg = serve_config(overrides)
        imported = import_model(cfg, alias, with_precompute=precompute)
        tag = build_bento(cfg, root)
    ref = imported.ref
    console.print(
        f"[bold]model[/] {imported.tag} = {ref.model_name} v{ref.version} ({ref.alias})"
        + (" [dim](already in the store)[/]" if imported.reused else "")
    )
    if imported.coverage:
        _print_coverage(imported.coverage)
    console.print(f"[bold]bento[/] {tag}  (BENTOML_HOME={home})")
    console.print(
        f"serve it:       BENTOML_HOME={home} bentoml serve {tag} --host {cfg.host}\n"
        f"containerize:   BENTOML_HOME={home} bentoml containerize {tag}  (needs Docker)"
    )


@bento_app.command("precompute")
def precompute_cmd(overrides: Overrides = None, alias: Alias = None) -> None:
    """Write top-k for every model-served user to serve.precompute.path (live mode reads it
    while that version is the champion); prints the share of users it covers."""
    from recops.serving.bento import write_precomputed

    setup_logging()
    with exit_on_error():
        result = write_precomputed(serve_config(overrides), alias)
    console.print(f"wrote {result['path']} for {result['model']} (k={result['k']})")
    _print_coverage(result)


def serve(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="serve.* overrides, e.g. serve.workers=1")
    ] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default: serve.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: serve.port)")] = None,
) -> None:
    """Serve the champion with BentoML (live mode): checks the port, then runs
    `bentoml serve` in this process (stop it with Ctrl-C or SIGTERM)."""
    from recops.serving.config import OVERRIDES_ENV, load_serve_config, parse_overrides
    from recops.serving.launch import admin_notice, exec_bentoml

    setup_logging()
    with exit_on_error():
        root = find_project_root()
        extra = parse_overrides(overrides)
        extra += [f"{k}={v}" for k, v in (("host", host), ("port", port)) if v is not None]
        cfg, _ = load_serve_config(overrides=[*parse_overrides(os.getenv(OVERRIDES_ENV)), *extra])
        notice = admin_notice(cfg.host)
        if notice:
            console.print(f"[yellow]warning:[/] {notice}")
        exec_bentoml(cfg, root, extra)


def _print_coverage(cov: dict[str, object]) -> None:
    share = float(cov["precomputed_share"])  # type: ignore[arg-type]
    console.print(
        f"precomputed {cov['precomputed_users']:,} of {cov['known_users']:,} known users "
        f"({share:.1%}); the other {cov['fallback_known_users']:,} (fewer than "
        f"{cov['min_history']} interactions) and all unknown users get the fallback, so 100% "
        "of users get an answer"
    )
