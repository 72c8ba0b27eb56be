"""What the coordinator of a multi-worker study does when a worker dies: the trial it was
running (and only that one) becomes FAIL and its MLflow run FAILED."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from recops.tuning.objective import RUN_ID_ATTR, WORKER_ATTR, worker_id
from recops.tuning.workers import fail_orphaned_trials, on_stale_trial


def running_trial(study: optuna.Study, owner: str, run_id: str | None = None) -> optuna.Trial:
    trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, owner)
    if run_id:
        trial.set_user_attr(RUN_ID_ATTR, run_id)
    return trial


def test_only_the_dead_workers_trials_fail(tmp_path: Path, mlflow_store: str) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="s")
    run = MlflowClient().create_run(MlflowClient().create_experiment("e"))
    dead, alive = worker_id(111), worker_id(222)
    running_trial(study, dead, run.info.run_id)
    running_trial(study, alive)

    assert fail_orphaned_trials(study, [dead]) == [0]
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING]
    ended = MlflowClient().get_run(run.info.run_id)
    assert ended.info.status == "FAILED" and "died" in ended.data.tags["error"]
    assert fail_orphaned_trials(study, [dead]) == []  # nothing left to do the second time


def test_a_stale_trial_found_by_the_heartbeat_ends_its_run(mlflow_store: str) -> None:
    study = optuna.create_study()
    run = MlflowClient().create_run(MlflowClient().create_experiment("e"))
    trial = running_trial(study, "elsewhere:9", run.info.run_id)
    study.tell(trial, state=TrialState.FAIL)
    on_stale_trial(study, study.get_trials()[0])
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_the_heartbeat_storage_calls_back_on_stale_trials_without_a_deprecation_warning(
    tmp_path: Path,
) -> None:
    """`recops optimize` printed Optuna 4.9's FutureWarning about `failed_trial_callback`."""
    import warnings

    from omegaconf import OmegaConf

    from recops.tuning.study import open_storage

    url = f"sqlite:///{tmp_path / 'o.db'}"
    cfg = OmegaConf.create({"sweep": {"storage": url, "heartbeat_s": 5, "grace_s": 10}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = open_storage(cfg)
    assert [str(w.message) for w in caught if w.category is FutureWarning] == []
    assert storage.get_heartbeat_stale_trial_callback() is on_stale_trial
