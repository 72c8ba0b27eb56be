"""`dvc repro` against the team MLflow server, `recops drift` reading its champion, and the
pipeline's outputs pushed to / pulled from a DVC remote on the S3 server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ..conftest import run
from .engines import MlflowServer, S3Server, client_env

pytestmark = pytest.mark.integration
NAME = "team-dvc"
SMALL = {
    "data.source.n_users": 200,
    "data.source.n_items": 80,
    "data.source.n_events": 6000,
    "model.factors": 8,
    "model.show_progress": "false",
    "registry.model_name": NAME,
    "experiment": NAME,
}
#: The cached outputs (run.json, metrics, the DuckDB store are `cache: false`: git keeps them).
OUTPUTS = ("data/snapshot", "data/features", "models/model")


def test_dvc_repro_on_the_team_server_and_outputs_through_an_s3_remote(
    project_copy: Path, tmp_path: Path, mlflow_server: MlflowServer, s3: S3Server
) -> None:
    env = client_env(mlflow_server)  # S3 keys included; the endpoint is the remote's
    repo = project_copy
    run(["recops", "params", *(f"{k}={v}" for k, v in SMALL.items())], repo, env)
    run(["dvc", "repro", "register"], repo, env, timeout=900)

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    champion = client.get_model_version_by_alias(NAME, "champion")
    run_info = json.loads((repo / "models" / "run.json").read_text())
    assert champion.run_id == run_info["run_id"]
    registry = json.loads((repo / "reports" / "registry.json").read_text())
    assert registry["promoted"] is True

    drift = run(["recops", "drift", "--reference", "first:42d", "--current", "last:14d",
                 *(f"{k}={v}" for k, v in SMALL.items())], repo, env)  # fmt: skip
    assert "reco_popularity" in drift

    # the outputs go to the S3 remote and come back
    run(["dvc", "remote", "add", "-d", "team", f"s3://{s3.bucket}/dvc"], repo, env)
    run(["dvc", "remote", "modify", "team", "endpointurl", s3.endpoint], repo, env)
    run(["dvc", "push"], repo, env, timeout=600)
    assert s3.object_keys("dvc/")
    before = (repo / "models" / "model" / "recommender.json").read_text()
    for out in OUTPUTS:
        target = repo / out
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    run(["dvc", "pull"], repo, env, timeout=600)
    assert (repo / "models" / "model" / "recommender.json").read_text() == before
    assert all((repo / out).exists() for out in OUTPUTS)
    status = run(["dvc", "status", "register"], repo, env)  # the stages that ran
    assert "up to date" in status.lower() or "changed" not in status, status
