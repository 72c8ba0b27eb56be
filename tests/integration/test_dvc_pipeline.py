"""The whole DVC pipeline on a small synthetic world, in a temp copy of the project."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from recops.models.recommender import Recommender

from .conftest import TINY_WORLD, project_env, run

pytestmark = pytest.mark.integration


def test_dvc_exp_run_override_reaches_the_model_and_ends_with_a_champion(
    project_copy: Path, tmp_path: Path
) -> None:
    env = project_env(tmp_path)
    sets = [f"{k}={v}" for k, v in TINY_WORLD.items()] + ["model.factors=16"]
    cmd = ["dvc", "exp", "run"]
    for s in sets:
        cmd += ["-S", s]
    run(cmd, project_copy, env, timeout=900)

    # DVC's Hydra composition regenerated params.yaml from conf/ with the override ...
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    assert params["model"]["factors"] == 16
    # ... and it reached the trained model and the MLflow run.
    recommender = Recommender.load(project_copy / "models" / "model")
    assert recommender.model.get_params()["factors"] == 16
    assert recommender.model.user_factors is not None
    assert recommender.model.user_factors.shape[1] == 16

    run_info = json.loads((project_copy / "models" / "run.json").read_text())
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    logged = client.get_run(run_info["run_id"])
    assert logged.data.params["model.factors"] == "16"
    assert {"model_type", "data_snapshot", "git_commit", "dataset"} <= set(logged.data.tags)
    assert "ndcg_at_10" in logged.data.metrics and "baseline_ndcg_at_10" in logged.data.metrics

    metrics = json.loads((project_copy / "reports" / "metrics.json").read_text())
    for key in (
        "ndcg_at_10",
        "recall_at_10",
        "map_at_10",
        "mrr_at_10",
        "hit_rate_at_10",
        "precision_at_5",
        "coverage_at_10",
        "novelty_at_10",
        "arp_at_10",
    ):
        assert isinstance(metrics["model"][key], float), key
        assert isinstance(metrics["baseline"][key], float), key
    assert metrics["model"]["ndcg_at_10"] > metrics["baseline"]["ndcg_at_10"]

    registry = json.loads((project_copy / "reports" / "registry.json").read_text())
    assert registry["promoted"] and "no champion yet" in registry["reason"]
    champion = client.get_model_version_by_alias(registry["model_name"], "champion")
    assert champion.run_id == run_info["run_id"]

    # Nothing changed: a second repro runs no stage and creates no version.
    out = run(["dvc", "repro"], project_copy, env)
    assert "didn't change, skipping" in out or "is cached" in out
    assert len(client.search_model_versions(f"name='{registry['model_name']}'")) == 1
