"""Team mode, measured (writes reports/benchmarks/team.md and team.json).

The machine is shared with other jobs whose load comes and goes, so each comparison is
INTERLEAVED and repeated (A, B, A, B, ...): every run is reported with the load average at
its start, and a comparison is read from the per-pair ratios (median, min, max), never from
two runs far apart in time.

1. `python -m pipelines.train model=als` against the team MLflow server (PostgreSQL + S3
   artifacts through the server) vs the local SQLite store, `TRACKING_PAIRS` pairs after one
   warm-up run each. The tracking/registry time is measured directly: every MLflow call of
   the command is timed in-process (`team_train.py`); the pipeline's own timed step "logging
   the run and model to MLflow" is reported next to it.
2. `recops optimize model=als trials=OPTUNA_TRIALS` on PostgreSQL with 1 vs 2 workers,
   `OPTUNA_PAIRS` interleaved pairs, one thread per fit (`threads=1`), so the ideal is a
   2x speed-up of the trials on 2 cores; the ideal 2-worker wall time (the 1-worker run's
   fixed cost + half its trial time) is reported next to the measured one.
3. `spark_als` vs `als` on MovieLens small and on a 1M-event synthetic world: fit time, peak
   memory (python VmHWM + the JVM's VmHWM), NDCG@10. On MovieLens each model is tuned on its
   own on each world with a few Optuna trials (`TUNE_TRIALS`, the first one the config's
   defaults, validation split carved from training), and the best config is refit on the
   training data and tested. One run each.

Each part is its own test and stores its section of team.json when it finishes (with its
start/end time and load), so `-k` re-measures one part; team.md is rebuilt from team.json.
With $RECOPS_BENCH_PAUSE_FILE set, no run starts while that file exists.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..integration.team.engines import EngineMissing, MlflowServer, Postgres, S3Server, client_env
from .conftest import ML_SMALL, PROJECT_ROOT, RESULTS, build_features

TRACKING_PAIRS = 3
OPTUNA_PAIRS = 2
OPTUNA_TRIALS = 20
TUNE_TRIALS = 4
LOGGING_STEP = re.compile(r"logging the run and model to MLflow done in ([\d.]+) s")
SPARK = ["spark.master='local[2]'"]
BENCH = Path(__file__).parent


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


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def wait_while_paused() -> None:
    """On a shared machine another job may ask for quiet while it times something: while the
    file named by $RECOPS_BENCH_PAUSE_FILE exists, no new run starts."""
    pause = os.environ.get("RECOPS_BENCH_PAUSE_FILE")
    while pause and Path(pause).exists():
        time.sleep(10)


def timed(cmd: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT) -> tuple[float, str]:
    wait_while_paused()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return wall, out


def save_section(name: str, section: dict[str, Any]) -> None:
    """Store one part's results in team.json and rebuild team.md from all parts."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "team.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = section
    path.write_text(json.dumps(results, indent=2))
    (RESULTS / "team.md").write_text(report(results))


def ratios(runs: list[dict[str, Any]], key: str, a: str, b: str, by: str) -> dict[str, Any]:
    """Per-pair ratio b/a of `key` (runs tagged `by` == a or b, paired by `pair`)."""
    pairs: dict[int, dict[str, float]] = {}
    for run in runs:
        pairs.setdefault(run["pair"], {})[str(run[by])] = run[key]
    values = [p[b] / p[a] for p in pairs.values() if a in p and b in p and p[a] > 0]
    return {
        "per_pair": values,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


# --- 1. tracking and registry: team server vs SQLite --------------------------------------


def test_tracking_server_vs_sqlite(engines: tuple[Postgres, MlflowServer], tmp_path: Path) -> None:
    _, server = engines
    envs = {
        "sqlite": {**client_env(server), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'db'}"},
        "server": client_env(server),
    }
    section: dict[str, Any] = {"started": now(), "load_start": load1(), "runs": []}
    for store, env in envs.items():
        # data cache, imports, the store's schema and a champion to compare with, for both
        section.setdefault("warmup", {})[store] = train_timed(tmp_path, env, store)
    for pair in range(TRACKING_PAIRS):
        for store, env in envs.items():
            run = {"pair": pair, "store": store, **train_timed(tmp_path, env, store)}
            section["runs"].append(run)
    section.update(ended=now(), load_end=load1())
    runs = section["runs"]
    section["ratio_mlflow_main"] = ratios(runs, "mlflow_main_s", "sqlite", "server", "store")
    section["ratio_wall"] = ratios(runs, "wall_s", "sqlite", "server", "store")
    save_section("tracking", section)


def train_timed(tmp: Path, env: dict[str, str], store: str) -> dict[str, Any]:
    """One `python -m pipelines.train model=als` with its MLflow calls timed."""
    overrides = [
        "model=als", "model.show_progress=false", f"paths.duckdb={tmp / store / 'db.duckdb'}",
        f"paths.cache_dir={tmp / 'cache'}", f"paths.reports_dir={tmp / store / 'reports'}",
        f"registry.model_name=bench-{store}", f"hydra.run.dir={tmp / store / 'hydra'}",
    ]  # fmt: skip
    wait_while_paused()
    load = load1()
    wall, out = timed([sys.executable, str(BENCH / "team_train.py"), *overrides], env)
    line = next(ln for ln in out.splitlines() if ln.startswith("MLFLOW_CALLS "))
    calls = json.loads(line.removeprefix("MLFLOW_CALLS "))
    step = LOGGING_STEP.search(out)
    return {
        "load_1min": load,
        "wall_s": wall,
        "logging_step_s": float(step.group(1)) if step else float("nan"),
        **calls,
    }


# --- 2. Optuna: 1 vs 2 workers ------------------------------------------------------------


def test_optuna_one_vs_two_workers(engines: tuple[Postgres, MlflowServer], tmp_path: Path) -> None:
    postgres, server = engines
    section: dict[str, Any] = {"started": now(), "load_start": load1(), "runs": []}
    for pair in range(OPTUNA_PAIRS):
        for workers in (1, 2):
            run = sweep_timed(tmp_path, postgres, client_env(server), pair, workers)
            section["runs"].append(run)
    section.update(ended=now(), load_end=load1())
    section["speedup"] = ratios(section["runs"], "speed", "1", "2", "workers")
    save_section("optuna", section)


def sweep_timed(
    tmp: Path, postgres: Postgres, env: dict[str, str], pair: int, workers: int
) -> dict[str, Any]:
    """One `recops optimize` of OPTUNA_TRIALS trials on a fresh study; wall time, and the
    trials' own time from the Optuna storage (the rest is the command's fixed cost)."""
    import optuna

    name = f"bench-{pair}-{workers}"
    storage = postgres.create_database(f"bench_optuna_{pair}_{workers}")
    cmd = [
        sys.executable, "-m", "recops.cli", "optimize", "model=als", f"trials={OPTUNA_TRIALS}",
        f"sweep.storage={storage}", "sweep.retrain_best=false", f"sweep.study_name={name}",
        "model.show_progress=false", "threads=1", f"paths.duckdb={tmp / 'opt.duckdb'}",
        f"paths.cache_dir={tmp / 'cache'}", f"paths.reports_dir={tmp / 'reports'}",
        "--workers", str(workers),
    ]  # fmt: skip
    wait_while_paused()
    load = load1()
    wall, _ = timed(cmd, env)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    trial_s = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done)  # type: ignore[operator]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)  # type: ignore[type-var]
    return {
        "pair": pair,
        "workers": workers,
        "load_1min": load,
        "wall_s": wall,
        "speed": 1.0 / wall,
        "n_trials": len(done),
        "trials_sum_s": trial_s,
        "trials_span_s": span.total_seconds(),
        "fixed_s": wall - span.total_seconds(),
    }


# --- 3. spark_als vs als ------------------------------------------------------------------


def test_spark_als_vs_als(engines: tuple[Postgres, MlflowServer], tmp_path: Path) -> None:
    postgres, server = engines
    section: dict[str, Any] = {"started": now(), "load_start": load1(), "models": {}}
    worlds = {
        "movielens_small": ["data=movielens_small", f"data.source.local_dir={ML_SMALL}"],
        "synthetic_1m": [
            "data.source.n_users=20000", "data.source.n_items=5000", "data.source.n_events=1000000",
        ],
    }  # fmt: skip
    features = {name: prepare(tmp_path / name, data) for name, data in worlds.items()}
    for model, extra in (("als", []), ("spark_als", SPARK)):
        row: dict[str, Any] = {"tuned_params": {}}
        for name, data in worlds.items():
            tuned = tune(tmp_path / name, postgres, client_env(server), model, [*data, *extra])
            row["tuned_params"][name] = tuned
            row[name] = fit(features[name], [*data, f"model={model}", *extra, *tuned])
        section["models"][model] = row
    section.update(ended=now(), load_end=load1())
    save_section("models", section)


def prepare(folder: Path, overrides: list[str]) -> Path:
    build_features(folder, overrides)
    return folder / "features"


def fit(features: Path, overrides: list[str]) -> dict[str, float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    wait_while_paused()
    load = load1()
    _, out = timed([sys.executable, str(BENCH / "team_fit.py"), str(features), *overrides], env)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return {"load_1min": load, **json.loads(line.removeprefix("RESULT "))}


def tune(
    tmp: Path, postgres: Postgres, env: dict[str, str], model: str, overrides: list[str]
) -> list[str]:
    """A short Optuna study of `model` (data in `overrides`, work files under `tmp`); the best
    params as overrides."""
    name = f"tune_{tmp.name}_{model}"
    storage = postgres.create_database(f"bench_{name}")
    cmd = [
        sys.executable, "-m", "recops.cli", "optimize", f"model={model}", *overrides,
        f"trials={TUNE_TRIALS}",
        f"sweep.storage={storage}", "sweep.retrain_best=false", f"sweep.study_name={name}",
        f"paths.duckdb={tmp / 'tune.duckdb'}", f"paths.cache_dir={tmp / 'cache'}",
        f"paths.reports_dir={tmp / 'reports'}",
    ]  # fmt: skip
    timed(cmd, env)
    summary = json.loads((tmp / "reports" / "sweeps" / name / "summary.json").read_text())
    return [f"{k}={v}" for k, v in summary["best_params"].items()]


# --- the report ---------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    lines = [
        "# Team mode benchmark",
        "",
        "`pytest tests/benchmarks/test_team.py -m benchmark -s` (real PostgreSQL 15, moto S3, "
        "`mlflow server` on both, Spark local[2]) on 2 cores shared with other jobs. "
        "Comparisons are interleaved (A, B, A, B, ...) and read from the per-pair ratios; "
        "`load` is the 1-minute load average when a run started.",
        "",
    ]
    for name, render in (("tracking", tracking_md), ("optuna", optuna_md), ("models", models_md)):
        lines += render(r[name]) if name in r else [f"## {name}", "", "Not measured yet.", ""]
    return "\n".join(lines)


def when(section: dict[str, Any]) -> str:
    return (
        f"Measured {section['started']} to {section['ended']}, load average "
        f"{section['load_start']:.1f} at the start, {section['load_end']:.1f} at the end."
    )


def ratio_text(ratio: dict[str, Any]) -> str:
    each = ", ".join(f"{v:.2f}" for v in ratio["per_pair"])
    return (
        f"**{ratio['median']:.2f}x** median (per pair: {each}; "
        f"min {ratio['min']:.2f}, max {ratio['max']:.2f})"
    )


def tracking_md(t: dict[str, Any]) -> list[str]:
    lines = [
        "## Tracking and registry: team server vs local SQLite",
        "",
        when(t),
        "",
        "`python -m pipelines.train model=als` on the default synthetic world (data cached, "
        "one warm-up run per store first, so every measured run registers against an existing "
        "champion). `MLflow, critical path` = time inside MLflow calls on the main thread "
        "(run, params, metrics, model upload, evaluation artifacts, registration, gates' "
        "downloads, aliases), timed in-process; `setup thread` = opening the store while the "
        "model trains (overlaps the fit); `logging step` = the pipeline's own timed step "
        '"logging the run and model to MLflow".',
        "",
        "| pair | store | load | wall (s) | MLflow, critical path (s) | setup thread (s) "
        "| logging step (s) | MLflow calls |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in t["runs"]:
        lines.append(
            f"| {run['pair'] + 1} | {run['store']} | {run['load_1min']:.1f} | "
            f"{run['wall_s']:.1f} | {run['mlflow_main_s']:.2f} | "
            f"{run['mlflow_background_s']:.2f} | {run['logging_step_s']:.1f} | {run['n_calls']} |"
        )
    slowest = max(t["runs"], key=lambda run: run["mlflow_main_s"])
    top = ", ".join(f"`{k}` {v:.2f} s" for k, v in list(slowest["top_calls"].items())[:5])
    lines += [
        "",
        f"Server / SQLite, MLflow time on the critical path: {ratio_text(t['ratio_mlflow_main'])}.",
        f"Server / SQLite, whole command: {ratio_text(t['ratio_wall'])}.",
        "",
        f"Where the MLflow time goes (slowest run, {slowest['store']}): {top}.",
        "",
    ]
    return lines


def optuna_md(o: dict[str, Any]) -> list[str]:
    lines = [
        "## Optuna: 2 workers vs 1",
        "",
        when(o),
        "",
        f"`recops optimize model=als trials={OPTUNA_TRIALS} threads=1` on PostgreSQL, trials "
        "logged to the team server, no retrain; a fresh study per run. `trials` = the sum of "
        "the trials' own durations (Optuna storage), `fixed` = wall minus the span from the "
        "first trial's start to the last one's end (process start, study and parent run "
        "creation, report). Ideal 2-worker wall = the 1-worker run's fixed cost + half its "
        "trial time (each fit uses one thread, so 2 workers can at best halve the trials on 2 "
        "cores).",
        "",
        "| pair | workers | load | wall (s) | trials (s) | fixed (s) | ideal wall (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ones = {run["pair"]: run for run in o["runs"] if run["workers"] == 1}
    for run in o["runs"]:
        base = ones.get(run["pair"])
        ideal = (
            f"{base['fixed_s'] + base['trials_sum_s'] / 2:.1f}"
            if run["workers"] == 2 and base
            else ""
        )
        lines.append(
            f"| {run['pair'] + 1} | {run['workers']} | {run['load_1min']:.1f} | "
            f"{run['wall_s']:.1f} | {run['trials_sum_s']:.1f} | {run['fixed_s']:.1f} | {ideal} |"
        )
    lines += ["", f"Speed-up of 2 workers over 1: {ratio_text(o['speedup'])}.", ""]
    return lines


def models_md(m: dict[str, Any]) -> list[str]:
    lines = [
        "## spark_als vs als",
        "",
        when(m),
        "",
        "MovieLens small and a 1M-event synthetic world (20k users x 5k items): on each, each "
        f"model tuned on its own with {TUNE_TRIALS} Optuna trials (the first one the config's "
        "defaults; validation split carved from training), the best config refit on the "
        "training data and tested once. Peak memory = VmHWM of the Python process + VmHWM of "
        "Spark's JVM. One run each (not interleaved): read the order of magnitude.",
        "",
        "| data | model | load | fit (s) | peak memory (MB) | of which JVM (MB) | NDCG@10 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for data in ("movielens_small", "synthetic_1m"):
        for model, row in m["models"].items():
            f = row[data]
            lines.append(
                f"| {data} | {model} | {f['load_1min']:.1f} | {f['fit_s']:.1f} | "
                f"{f['peak_mb']:.0f} | {f['jvm_hwm_mb']:.0f} | {f['ndcg_at_10']:.4f} |"
            )
    for model, row in m["models"].items():
        for data, params in row["tuned_params"].items():
            lines.append(f"\n{model} tuned on {data}: `{' '.join(params)}`")
    return [*lines, ""]
