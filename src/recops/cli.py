"""`recops` command line. Every command takes Hydra overrides, e.g.
`recops train model=als model.factors=128 data=movielens_small`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from omegaconf import OmegaConf

from recops.backup.cli import backup_app
from recops.cli_support import exit_on_error, prepare_cli
from recops.config import compose, find_project_root
from recops.console import console
from recops.gdpr.cli import gdpr_app
from recops.monitoring.cli import drift_command
from recops.quality.cli import validate_command
from recops.registry.cli import promote, registry_app, rollback
from recops.serving.cli import bento_app
from recops.worker.cli import worker_app

app = typer.Typer(
    help="RecOps: train, evaluate, register and serve recommenders around MLflow.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """RecOps: train, evaluate, register and serve recommenders around MLflow."""
    prepare_cli()


Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra overrides, e.g. model=als model.factors=64 data=movielens_small"),
]


def _stage(name: str, overrides: list[str] | None) -> Any:
    from recops.pipeline.stages import run_stage

    with exit_on_error():
        return run_stage(name, compose(overrides or []))


@app.command()
def ingest(overrides: Overrides = None) -> None:
    """Validate the configured data source into DuckDB and export the parquet snapshot."""
    _stage("ingest", overrides)


@app.command()
def features(overrides: Overrides = None) -> None:
    """Build id maps, the weighted interaction matrix, item features and the split."""
    _stage("features", overrides)


@app.command()
def train(overrides: Overrides = None) -> None:
    """Everything for one model: ingest, features, train, evaluate, register (one MLflow run).

    Like `python -m pipelines.train`; prepared data is cached per config.
    """
    from recops.pipeline.stages import run_chain

    with exit_on_error():
        summary = run_chain(compose(overrides or []))
    console.print_json(data=summary)


@app.command()
def evaluate(overrides: Overrides = None) -> None:
    """Evaluate the DVC stage's trained model next to the popularity baseline."""
    _stage("evaluate", overrides)


@app.command()
def register(overrides: Overrides = None) -> None:
    """Register the DVC stage's trained model; promote it to champion if it passes the gate."""
    _stage("register", overrides)


#: Bare shorthands accepted by `recops optimize` (`trials=50` means `sweep.trials=50`).
SWEEP_SHORTHANDS = {"trials": "sweep.trials", "timeout": "sweep.timeout"}


def sweep_overrides(overrides: list[str]) -> list[str]:
    """Expand the `trials=N` / `timeout=S` shorthands into `sweep.*` overrides."""
    expanded = []
    for item in overrides:
        key, sep, value = item.partition("=")
        expanded.append(
            f"{SWEEP_SHORTHANDS[key]}={value}" if sep and key in SWEEP_SHORTHANDS else item
        )
    return expanded


@app.command()
def optimize(overrides: Overrides = None) -> None:
    """Optuna sweep over the model's search space (conf/sweep/<model>.yaml).

    e.g. `recops optimize model=als trials=50 timeout=600` (`trials`/`timeout` are short for
    `sweep.trials`/`sweep.timeout`).
    Running it again resumes the study (`<data.name>-<model>` or `sweep.study_name=...`)
    with that many more trials. Trials are nested MLflow runs under one parent run per study.
    """
    from recops.tuning.study import run_study

    with exit_on_error():
        outcome = run_study(sweep_overrides(overrides or []))
    console.print_json(data=outcome.headline())


@app.command()
def params(
    overrides: Overrides = None,
    output: Annotated[Path, typer.Option(help="file to write")] = Path("params.yaml"),
) -> None:
    """Write params.yaml composed from conf/ exactly as `dvc exp run` does."""
    cfg = compose(overrides or [])
    OmegaConf.resolve(cfg)
    target = output if output.is_absolute() else find_project_root() / output
    target.write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
    console.print(f"wrote {target}")


@app.command()
def summary(overrides: Overrides = None) -> None:
    """Headline metrics next to the popularity baseline, and the last registry decision."""
    from recops.config import resolve_path
    from recops.summary import print_summary

    cfg = compose(overrides or [])
    with exit_on_error():
        print_summary(resolve_path(cfg.paths.reports_dir), console)


@app.command("config")
def show_config(overrides: Overrides = None) -> None:
    """Print the composed, resolved configuration."""
    console.print(OmegaConf.to_yaml(compose(overrides or []), resolve=True))


app.command()(promote)
app.command()(rollback)
app.add_typer(registry_app, name="registry")
app.command("drift")(drift_command)
app.add_typer(worker_app, name="worker")
app.add_typer(bento_app, name="bento")
app.add_typer(gdpr_app, name="gdpr")
app.add_typer(backup_app, name="backup")
app.command("validate")(validate_command)

if __name__ == "__main__":
    app()
