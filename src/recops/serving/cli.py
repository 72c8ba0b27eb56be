"""`recops bento ...`: package the champion for BentoML and precompute its answers."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recops.cli_support import exit_on_error
from recops.config import compose, find_project_root
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
    return ServeConfig.from_config(compose(overrides or []))


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
        f"containerize:   recops bento containerize {tag}  (podman/buildah)"
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


# -- container image -----------------------------------------------------------------------------
Tag = Annotated[str, typer.Argument(help="bento tag (default: recops:latest)")]
Port = Annotated[int, typer.Option(help="port the service listens on (host network)")]


def _engine_env(cfg: ServeConfig) -> dict[str, str]:
    from recops.serving.container import engine_env

    return engine_env(cfg.container, find_project_root())


@bento_app.command("base-image")
def base_image(
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Hydra override (repeatable)")
    ] = None,
) -> None:
    """Build serve.container.base_image from Debian packages (debootstrap + podman import):
    for machines that reach a Debian mirror but no container registry. Needs root."""
    from recops.serving.container import build_base_image, image_size

    setup_logging()
    with exit_on_error():
        cfg = serve_config(overrides)
        image = build_base_image(cfg.container, find_project_root())
        size = image_size(image, _engine_env(cfg))
    console.print(f"[bold]base image[/] {image} ({size / 1e6:,.0f} MB)")


@bento_app.command()
def containerize(
    tag: Tag = "recops:latest",
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Hydra override (repeatable)")
    ] = None,
    ca_bundle: Annotated[
        str | None,
        typer.Option(help="CA bundle (PEM) for a TLS-intercepting proxy; build-only"),
    ] = None,
    index_url: Annotated[
        str | None, typer.Option(help="Python package index for the build (build-only)")
    ] = None,
    extra_index_url: Annotated[
        list[str] | None, typer.Option(help="extra package index (repeatable; build-only)")
    ] = None,
) -> None:
    """Build an OCI image of a bento (`recops bento build` first) with buildah or podman.

    The base image is serve.container.base_image (built with `recops bento base-image` when
    it is the local one and missing). The CA bundle and index settings are mounted into the
    build only: they never end up in the image."""
    from recops.serving.bento import use_bentoml_home
    from recops.serving.container import image_size
    from recops.serving.image import BuildSettings
    from recops.serving.image import containerize as build_image

    setup_logging()
    with exit_on_error():
        root = find_project_root()
        use_bentoml_home(root)
        cfg = serve_config(overrides)
        settings = BuildSettings.of(
            cfg.container,
            ca_bundle=ca_bundle,
            index_url=index_url,
            extra_index_urls=tuple(extra_index_url or ()),
        )
        ref, seconds = build_image(cfg, tag, settings, root)
        size = image_size(ref, _engine_env(cfg))
    console.print(f"[bold]image[/] {ref} ({size / 1e6:,.0f} MB, built in {seconds:.0f} s)")
    console.print(f"run it:  recops bento run {tag} --port 3000")


@bento_app.command()
def run(
    tag: Tag = "recops:latest",
    port: Port = 3000,
    host: Annotated[
        str | None, typer.Option(help="bind address (default: serve.container.host)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="container name (default: recops-PORT)")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="run in the background")] = False,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the service")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Hydra override (repeatable)")
    ] = None,
) -> None:
    """Run the image of a bento with podman (host network, explicit bind address). Ctrl-C or
    SIGTERM stops it gracefully; with --detach stop it with `recops bento stop NAME`."""
    import signal
    import subprocess

    from recops.serving.container import run_args, stop
    from recops.serving.image import image_ref

    setup_logging()
    with exit_on_error():
        cfg = serve_config(overrides)
        engine_env = _engine_env(cfg)
        image = image_ref(cfg.container, _resolve_tag(tag))
        name = name or f"recops-{port}"
        cmd = run_args(cfg.container, image, port, name, detach, env or (), host)
        if detach:
            subprocess.run(cmd, env=engine_env, check=True, capture_output=True)
            console.print(
                f"[bold]{name}[/] {image} on http://{host or cfg.container.host}:{port} "
                f"(stop: recops bento stop {name})"
            )
            return
        proc = subprocess.Popen(cmd, env=engine_env, start_new_session=True)

        def graceful(signum: int, frame: object) -> None:
            stop(cfg.container, name, engine_env, remove=False)

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, graceful)
        code = proc.wait()
    raise typer.Exit(code)


@bento_app.command("stop")
def stop_cmd(
    name: Annotated[str, typer.Argument(help="container name (recops-PORT by default)")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Hydra override (repeatable)")
    ] = None,
) -> None:
    """Stop a container started with `recops bento run --detach` (SIGTERM, graceful drain);
    exit 1 unless it shut down by itself with exit code 0."""
    from recops.serving.container import stop

    setup_logging()
    with exit_on_error():
        cfg = serve_config(overrides)
        result = stop(cfg.container, name, _engine_env(cfg))
    console.print(f"stopped {name} in {result.seconds:.1f} s, exit code {result.exit_code}")
    if not result.clean:
        raise typer.Exit(1)


def _resolve_tag(tag: str) -> str:
    """`recops:latest` -> the concrete tag of the newest bento (the image carries its version)."""
    from recops.serving.bento import use_bentoml_home

    if not tag.endswith(":latest") and ":" in tag:
        return tag
    use_bentoml_home(find_project_root())
    import bentoml

    return str(bentoml.get(tag).tag)


# -- load test (registered as `recops loadtest`) -------------------------------------------------
def loadtest_command(
    url: Annotated[str, typer.Option(help="base URL of the service, e.g. http://127.0.0.1:3000")],
    duration: Annotated[str, typer.Option(help="how long: 60s, 2m, 90")] = "60s",
    concurrency: Annotated[int, typer.Option(help="concurrent clients (closed loop)")] = 10,
    users_from: Annotated[
        str | None,
        typer.Option(
            help="snapshot folder (events.parquet + items.parquet) or events/users file "
            "(parquet/CSV with user_id); default: paths.snapshot_dir"
        ),
    ] = None,
    unknown_share: Annotated[float, typer.Option(help="share of unknown (new) users")] = 0.1,
    filter_share: Annotated[
        float, typer.Option(help="share of requests with filters (category, excluded items)")
    ] = 0.2,
    k: Annotated[int, typer.Option(help="items per request")] = 10,
    timeout: Annotated[float, typer.Option(help="per-request timeout, s")] = 10.0,
    seed: Annotated[int, typer.Option(help="traffic seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Hydra override, e.g. serve.slo.p95_ms=50 (repeatable)"),
    ] = None,
) -> None:
    """POST /recommend traffic for DURATION at CONCURRENCY, then p50/p95/p99, throughput,
    error rate and availability against serve.slo. Exit 1 when an SLO is missed."""
    import asyncio
    import json
    from pathlib import Path

    from rich.table import Table

    from recops.config import resolve_path
    from recops.console import escape, progress
    from recops.serving.loadtest import drive, load_traffic, parse_duration, slo_rows, summarize

    setup_logging()
    with exit_on_error():
        cfg = compose(overrides or [])
        slo = ServeConfig.from_config(cfg).slo
        seconds = parse_duration(duration)
        source = Path(users_from) if users_from else resolve_path(str(cfg.paths.snapshot_dir))
        traffic = load_traffic(source, unknown_share, filter_share, k)
        with progress(f"load test {url}", total=round(seconds), unit="s", every_s=5) as bar:

            def tick(elapsed: float, outcome: object) -> None:
                bar.advance(max(0.0, min(elapsed, round(seconds) - bar.done)))

            outcome = asyncio.run(drive(url, traffic, seconds, concurrency, timeout, seed, tick))
        report = summarize(outcome, slo, concurrency)
    if as_json:
        print(json.dumps({"url": url, "users": len(traffic.users), **report}, indent=2))
    else:
        lat = report["latency_ms"]
        console.print(
            f"{report['requests']:,} requests in {report['duration_s']:.0f} s at concurrency "
            f"{concurrency}: {report['throughput_rps']:.0f} req/s; p50 {lat['p50']:.1f} ms, "
            f"p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms; "
            f"statuses {escape(str(report['by_status']))}"
            + (f", failures {escape(str(report['failures']))}" if report["failures"] else "")
        )
        table = Table(title=f"SLOs ({escape(url)})")
        for column in ("SLO", "objective", "measured", "result"):
            table.add_column(column)
        for name, objective, measured, verdict in slo_rows(report):
            style = "green" if verdict == "met" else "bold red"
            table.add_row(name, objective, measured, f"[{style}]{verdict}[/]")
        console.print(table)
    if not report["slo_met"]:
        raise typer.Exit(1)
