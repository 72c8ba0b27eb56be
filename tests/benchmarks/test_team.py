"""Team mode, measured (writes reports/benchmarks/team.md and team.json).

1. `python -m pipelines.train model=als` against the team MLflow server (PostgreSQL + S3
   artifacts through the server) vs the local SQLite store: the tracking/registry part of
   the wall time = total minus the pipeline's own timed steps (snapshot, features, training,
   evaluation), and the ratio.
2. `spark_als` vs `als` on MovieLens small and on a 1M-event synthetic world: fit time, peak
   memory (python VmHWM + the JVM's VmHWM), NDCG@10. On MovieLens each model is tuned on its
   own with a few Optuna trials (`TUNE_TRIALS`, validation split carved from training) and the
   best config is refit and tested; the 1M world uses the configs' defaults (say so).
3. `recops optimize model=als trials=20` on PostgreSQL with --workers 2 vs 1: wall time.

The machine is shared with other engineers' jobs: the load average is recorded next to the
figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recops.config import compose
from recops.pipeline.context import StagePaths
from recops.pipeline.prepare import features_stage, ingest_stage

from ..integration.team.engines import EngineMissing, MlflowServer, Postgres, S3Server, client_env
from .conftest import ML_SMALL, PROJECT_ROOT, RESULTS

TUNE_TRIALS = 4
OPTUNA_TRIALS = 20
STEP = re.compile(
    r"recops: (reading snapshot|building features|training|evaluating).* done in ([\d.]+) s"
)
SPARK = ["spark.master='local[2]'"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Postgres, MlflowServer]]:
    try:
        postgres = Postgres().start()
        s3 = S3Server(tmp_path_factory.mktemp("s3")).start()
    except EngineMissing as exc:
        pytest.skip(str(exc))
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), postgres, s3).start()
    try:
        yield postgres, server
    finally:
        server.stop()
        s3.stop()
        postgres.stop()


def timed(cmd: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return wall, out


def tracking_part(tmp: Path, env: dict[str, str], tag: str) -> dict[str, float]:
    overrides = [
        "model=als", "model.show_progress=false", f"paths.duckdb={tmp / tag / 'db.duckdb'}",
        f"paths.cache_dir={tmp / 'cache'}", f"paths.reports_dir={tmp / tag / 'reports'}",
        f"registry.model_name=bench-{tag}", f"hydra.run.dir={tmp / tag / 'hydra'}",
    ]  # fmt: skip
    wall, out = timed([sys.executable, "-m", "pipelines.train", *overrides], env)
    steps = sum(float(m.group(2)) for m in STEP.finditer(out))
    return {"wall_s": wall, "steps_s": steps, "tracking_s": wall - steps}


def test_team_benchmarks(engines: tuple[Postgres, MlflowServer], tmp_path: Path) -> None:
    postgres, server = engines
    results: dict[str, Any] = {"load_average_start": os.getloadavg()}
    local_env = {**client_env(server), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    team_env = client_env(server)
    tracking_part(tmp_path, local_env, "warmup")  # data cache + imports warm for both
    results["tracking"] = {
        "sqlite": tracking_part(tmp_path, local_env, "sqlite"),
        "server": tracking_part(tmp_path, team_env, "server"),
    }

    ml = prepare(tmp_path / "ml", ["data=movielens_small", f"data.source.local_dir={ML_SMALL}"])
    big = prepare(
        tmp_path / "big",
        ["data.source.n_users=20000", "data.source.n_items=5000", "data.source.n_events=1000000"],
    )
    results["models"] = {}
    for model, extra in (("als", []), ("spark_als", SPARK)):
        tuned = tune(tmp_path, postgres, team_env, model, extra)
        results["models"][model] = {
            "tuned_params": tuned,
            "movielens_small": fit(ml, ["data=movielens_small", f"model={model}", *extra, *tuned]),
            "synthetic_1m": fit(big, [f"model={model}", *extra]),
        }

    results["optuna"] = {}
    for workers in (1, 2):
        storage = postgres.create_database(f"bench_optuna_{workers}")
        cmd = [
            sys.executable, "-m", "recops.cli", "optimize", "model=als",
            f"trials={OPTUNA_TRIALS}", f"sweep.storage={storage}", "sweep.retrain_best=false",
            f"sweep.study_name=bench-{workers}", "model.show_progress=false",
            f"paths.duckdb={tmp_path / 'opt.duckdb'}", f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.reports_dir={tmp_path / 'reports'}", "--workers", str(workers),
        ]  # fmt: skip
        results["optuna"][workers] = timed(cmd, team_env)[0]
    results["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "team.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "team.md").write_text(report(results))


def prepare(folder: Path, overrides: list[str]) -> Path:
    cfg = compose(
        [
            *overrides,
            f"paths.duckdb={folder / 'db.duckdb'}",
            f"paths.snapshot_dir={folder / 'snap'}",
            f"paths.features_dir={folder / 'features'}",
        ]
    )
    paths = StagePaths.from_config(cfg)
    ingest_stage(cfg, paths)
    features_stage(cfg, paths)
    return paths.features_dir


def fit(features: Path, overrides: list[str]) -> dict[str, float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    script = Path(__file__).with_name("team_fit.py")
    _, out = timed([sys.executable, str(script), str(features), *overrides], env)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def tune(
    tmp: Path, postgres: Postgres, env: dict[str, str], model: str, extra: list[str]
) -> list[str]:
    """A short Optuna study on MovieLens small; the best params as overrides."""
    storage = postgres.create_database(f"bench_tune_{model}")
    cmd = [
        sys.executable, "-m", "recops.cli", "optimize", f"model={model}", *extra,
        "data=movielens_small", f"data.source.local_dir={ML_SMALL}", f"trials={TUNE_TRIALS}",
        f"sweep.storage={storage}", "sweep.retrain_best=false", f"sweep.study_name=tune-{model}",
        f"paths.duckdb={tmp / 'tune.duckdb'}", f"paths.cache_dir={tmp / 'cache'}",
        f"paths.reports_dir={tmp / 'reports'}",
    ]  # fmt: skip
    timed(cmd, env)
    summary = json.loads(
        (tmp / "reports" / "sweeps" / f"tune-{model}" / "summary.json").read_text()
    )
    return [f"{k}={v}" for k, v in summary["best_params"].items()]


def report(r: dict[str, Any]) -> str:
    t = r["tracking"]
    lines = [
        "# Team mode benchmark",
        "",
        "`pytest tests/benchmarks/test_team.py -m benchmark -s` (real PostgreSQL 15, moto S3, "
        "`mlflow server` on both, Spark local[2], 2 cores shared with other jobs: load average "
        f"{r['load_average_start'][0]:.1f} at the start, "
        f"{r['load_average_end'][0]:.1f} at the end). "
        "One run each: read the ratios, not the seconds.",
        "",
        "## Tracking and registry: team server vs local SQLite",
        "",
        "`python -m pipelines.train model=als` on the default synthetic world (data cached, "
        "same process start-up). Tracking/registry part = wall time minus the pipeline's timed "
        "steps (snapshot, features, training, evaluation): MLflow run, model upload, registration "
        "and gates.",
        "",
        "| store | wall (s) | pipeline steps (s) | tracking + registry (s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("sqlite", "server"):
        row = t[name]
        lines.append(
            f"| {name} | {row['wall_s']:.1f} | {row['steps_s']:.1f} | {row['tracking_s']:.1f} |"
        )
    ratio = t["server"]["tracking_s"] / max(t["sqlite"]["tracking_s"], 1e-9)
    lines += ["", f"Server / SQLite, tracking + registry part: **{ratio:.2f}x**.", ""]
    lines += [
        "## spark_als vs als",
        "",
        f"MovieLens small: each tuned on its own with {TUNE_TRIALS} Optuna trials (validation "
        "split carved from training), best config refit on the full training data and tested. "
        "1M-event synthetic world (20k users x 5k items): the configs' defaults (no tuning). "
        "Peak memory = VmHWM of the Python process + VmHWM of Spark's JVM.",
        "",
        "| data | model | fit (s) | peak memory (MB) | of which JVM (MB) | NDCG@10 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for data in ("movielens_small", "synthetic_1m"):
        for model, row in r["models"].items():
            m = row[data]
            lines.append(
                f"| {data} | {model} | {m['fit_s']:.1f} | {m['peak_mb']:.0f} | "
                f"{m['jvm_hwm_mb']:.0f} | {m['ndcg_at_10']:.4f} |"
            )
    for model, row in r["models"].items():
        lines.append(f"\n{model} tuned: `{' '.join(row['tuned_params'])}`")
    one, two = r["optuna"][1], r["optuna"][2]
    lines += [
        "",
        "## Optuna: 2 workers vs 1",
        "",
        f"`recops optimize model=als trials={OPTUNA_TRIALS}` on PostgreSQL, trials logged to the "
        "team server, no retrain.",
        "",
        "| workers | wall (s) |",
        "| ---: | ---: |",
        f"| 1 | {one:.1f} |",
        f"| 2 | {two:.1f} |",
        "",
        f"Speed-up: **{one / two:.2f}x** (2 cores, shared).",
        "",
    ]
    return "\n".join(lines)
