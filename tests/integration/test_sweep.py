"""Optuna sweeps against a real MLflow SQLite store and a real Optuna SQLite storage."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from recops.cli import sweep_overrides
from recops.config import compose
from recops.models.als import ALSModel
from recops.tuning.space import defaults_in_space, parse_space
from recops.tuning.study import run_study

from .conftest import PROJECT_ROOT, project_env, run, tiny_overrides

pytestmark = pytest.mark.integration
EXPERIMENT = "recops-sweeps"
GOOD = {"model.factors": 32, "model.regularization": 0.05, "model.alpha": 2.0}


@pytest.fixture
def sweep_base(tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Overrides for a tiny sweep with every output (and MLflow artifacts) under tmp_path."""
    monkeypatch.chdir(tmp_path)
    tiny = {
        "data.source.n_users": 200,
        "data.source.n_items": 80,
        "data.source.n_events": 6000,
        "sweep.storage": f"sqlite:///{tmp_path / 'optuna.db'}",
    }
    return ["model=als", *tiny_overrides(tmp_path, **tiny)]


def sweep_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parent runs, child runs) of the sweeps experiment."""
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    nested = runs["tags.mlflow.parentRunId"].notna()
    return runs[~nested], runs[nested]


def test_sweep_logs_nested_trials_and_resumes_in_another_process(
    sweep_base: list[str], tmp_path: Path, mlflow_store: str
) -> None:
    outcome = run_study([*sweep_base, "sweep.trials=3"])

    assert outcome.trials == {"complete": 3}
    parents, children = sweep_runs()
    assert len(parents) == 1 and len(children) == 3
    parent = parents.iloc[0]
    assert parent.run_id == outcome.parent_run_id
    assert set(children["tags.mlflow.parentRunId"]) == {outcome.parent_run_id}
    assert set(children["tags.state"]) == {"complete"} and set(children.status) == {"FINISHED"}
    assert sorted(children["tags.trial_number"].astype(int)) == [0, 1, 2]
    assert parent["metrics.best_val_ndcg_at_10"] == pytest.approx(outcome.best_value)
    assert parent["metrics.test_ndcg_at_10"] == outcome.test_metrics["test_ndcg_at_10"]
    # the parent and every trial carry the data snapshot as their dataset input (the UI's
    # Dataset column), as training runs do
    client = MlflowClient()
    for run_id in [parent.run_id, *children.run_id]:
        (dataset,) = [d.dataset for d in client.get_run(run_id).inputs.dataset_inputs]
        assert (dataset.name, dataset.digest) == (
            parent["tags.dataset"],
            parent["tags.data_snapshot"][:36],
        )
        assert "snapshot" in dataset.source

    best = OmegaConf.load(Path(str(outcome.best_config)))
    model = instantiate(best)
    assert isinstance(model, ALSModel)
    assert {f"model.{k}": getattr(model, k.split(".")[-1]) for k in ("factors", "iterations")} == {
        k: outcome.best_params[k] for k in ("model.factors", "model.iterations")
    }
    summary = json.loads((Path(outcome.report_dir) / "summary.json").read_text())
    assert summary["parent_run_id"] == outcome.parent_run_id
    assert summary["test_metrics"]["test_ndcg_at_10"] > 0
    assert (Path(outcome.report_dir) / "optimization_history.png").is_file()

    # A second process resumes the same study: 2 more trials under the same parent run.
    env = project_env(tmp_path, MLFLOW_TRACKING_URI=mlflow_store)
    resume = [*sweep_base, "sweep.trials=2", "sweep.retrain_best=false"]
    run(
        ["python", "-m", "pipelines.sweep", *resume, f"hydra.run.dir={tmp_path / 'hydra'}"],
        PROJECT_ROOT,
        env,
    )
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.load_study(study_name=outcome.study_name, storage=storage)
    assert len(study.trials) == 5
    # the new study started from the configured defaults (sweep.start_from_defaults), once
    cfg = compose(sweep_base)
    defaults = defaults_in_space(cfg, parse_space(cfg.sweep.space))
    assert defaults and study.trials[0].params == defaults
    assert all(t.params != defaults for t in study.trials[1:])
    parents, children = sweep_runs()
    assert len(parents) == 1 and len(children) == 5
    assert sorted(children["tags.trial_number"].astype(int)) == [0, 1, 2, 3, 4]


@pytest.mark.filterwarnings("ignore:Fixed parameter model.iterations with value 0")
def test_pruned_and_failed_trials_are_recorded(sweep_base: list[str], tmp_path: Path) -> None:
    name = "prune-and-fail"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.enqueue_trial({**GOOD, "model.iterations": 16})
    # Huge regularisation shrinks every factor to ~0: far below the first trial at epoch 8.
    study.enqueue_trial({**GOOD, "model.regularization": 1000.0, "model.iterations": 16})
    study.enqueue_trial({**GOOD, "model.iterations": 0})  # refused: a failed trial

    outcome = run_study(
        [
            *sweep_base,
            f"sweep.study_name={name}",
            "sweep.pruner.n_startup_trials=1",
            # Space keys hold dots: change bounds by merging a dict into `sweep.space`.
            "sweep.space={model.regularization:{type:float,low:0.001,high:1000.0,log:true}}",
            "sweep.retrain_best=false",
        ],
        trials=3,
    )

    assert outcome.trials == {"complete": 1, "pruned": 1, "fail": 1}
    states = [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                      optuna.trial.TrialState.FAIL]  # fmt: skip
    _, children = sweep_runs()
    by_trial = children.set_index(children["tags.trial_number"].astype(int)).sort_index()
    assert list(by_trial["tags.state"]) == ["complete", "pruned", "fail"]
    assert list(by_trial.status) == ["FINISHED", "FINISHED", "FAILED"]
    assert "must be >= 1" in by_trial.loc[2, "tags.error"]
    assert outcome.best_trial == 0 and not outcome.test_metrics


def test_cli_shorthands_mean_sweep_settings() -> None:
    assert sweep_overrides(["model=als", "trials=50", "timeout=600", "sweep.seed=1"]) == [
        "model=als",
        "sweep.trials=50",
        "sweep.timeout=600",
        "sweep.seed=1",
    ]
