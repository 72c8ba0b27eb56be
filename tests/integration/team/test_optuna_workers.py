"""`recops optimize --workers 2` on a real PostgreSQL Optuna storage, trials logged to the
team MLflow server: one study, trial numbers without gaps or duplicates, every trial under
the one parent run, a worker killed mid-trial leaves that trial failed and the study going."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ..conftest import PROJECT_ROOT, tiny_overrides
from .engines import MlflowServer, Postgres, client_env

pytestmark = pytest.mark.integration
SMALL = {"data.source.n_users": 200, "data.source.n_items": 80, "data.source.n_events": 6000}


def optimize_cmd(tmp: Path, storage: str, study: str, trials: int, *extra: str) -> list[str]:
    overrides = tiny_overrides(tmp, **SMALL, **{"model.show_progress": "false"})
    return [
        sys.executable, "-m", "recops.cli", "optimize", "model=als", f"trials={trials}",
        f"sweep.storage={storage}", f"sweep.study_name={study}", *overrides, *extra,
        "--workers", "2",
    ]  # fmt: skip


def trial_runs(server: MlflowServer, parent: str) -> list[object]:
    client = MlflowClient(tracking_uri=server.uri)
    experiment = client.get_experiment_by_name("recops-sweeps")
    assert experiment is not None
    flt = f"tags.mlflow.parentRunId = '{parent}'"
    return list(client.search_runs([experiment.experiment_id], flt, max_results=1000))


def test_two_workers_share_one_study_and_one_parent_run(
    tmp_path: Path, postgres: Postgres, mlflow_server: MlflowServer
) -> None:
    storage = postgres.create_database("optuna_two")  # empty: the schema race is ours to avoid
    cmd = optimize_cmd(tmp_path, storage, "two-workers", 6)
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=client_env(mlflow_server), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out

    study = optuna.load_study(study_name="two-workers", storage=storage)
    trials = study.get_trials()
    # numbered without gaps or duplicates; two workers that both see 5 of 6 trials done may
    # each start one more (Optuna has no atomic trial budget), so 6 or 7 trials
    n = len(trials)
    assert 6 <= n <= 7 and sorted(t.number for t in trials) == list(range(n))
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    workers = {t.user_attrs["worker"] for t in trials}
    assert 1 <= len(workers) <= 2
    parent = study.user_attrs["mlflow_parent_run_id"]
    runs = trial_runs(mlflow_server, parent)
    assert sorted(int(r.data.tags["trial_number"]) for r in runs) == list(range(n))
    assert out.count("test (best config, full training data)") == 1  # retrained once
    parent_run = MlflowClient(tracking_uri=mlflow_server.uri).get_run(parent)
    assert "test_ndcg_at_10" in parent_run.data.metrics


def test_a_worker_killed_mid_trial_fails_that_trial_and_the_study_goes_on(
    tmp_path: Path, postgres: Postgres, mlflow_server: MlflowServer
) -> None:
    storage = postgres.create_database("optuna_kill")
    cmd = optimize_cmd(tmp_path, storage, "kill-one", 8)
    log = tmp_path / "optimize.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=client_env(mlflow_server), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        victim = wait_for_running_trial(storage, "kill-one", proc, log)
        os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
        assert proc.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    study = optuna.load_study(study_name="kill-one", storage=storage)
    trials = {t.number: t for t in study.get_trials()}
    assert sorted(trials) == list(range(8)), log.read_text()[-3000:]
    assert trials[victim.number].state == TrialState.FAIL
    assert all(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        for n, t in trials.items()
        if n != victim.number
    )
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    killed_run = client.get_run(victim.user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "FAILED"
    assert "died" in killed_run.data.tags["error"]
    text = log.read_text()
    assert f"trial {victim.number} failed: its worker" in text
    assert "the study went on without it" in text


def wait_for_running_trial(
    storage: str, name: str, proc: subprocess.Popen[str], log: Path
) -> optuna.trial.FrozenTrial:
    """The first RUNNING trial with a worker attribute and an MLflow run (mid-trial)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-5000:]
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # not created yet
            time.sleep(0.5)
            continue
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            if "worker" in trial.user_attrs and "mlflow_run_id" in trial.user_attrs:
                return trial
        time.sleep(0.1)
    raise AssertionError(f"no trial started:\n{log.read_text()[-5000:]}")
