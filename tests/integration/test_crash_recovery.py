"""`kill -9` at the worst moments of a standalone train: nothing is left half-done once the next
registry command ran (the run FAILED instead of RUNNING forever; the half-registered version
archived with an audit record instead of READY with no alias and no record)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import PROJECT_ROOT, project_env, run, tiny_overrides
from .mlflow_template import initialised_store

pytestmark = pytest.mark.integration
MODEL = "recops-recommender"


def killed_at(point: str, tmp: Path, *overrides: str) -> None:
    """`python -m pipelines.train` (tiny world) killed with SIGKILL when it reaches `point`."""
    marker = tmp / f"paused-{point}"
    env = project_env(tmp, RECOPS_PAUSE_AT=point, RECOPS_PAUSE_FILE=str(marker))
    cmd = [sys.executable, "-m", "pipelines.train", *tiny_overrides(tmp), *overrides]
    log = tmp / f"train-{point}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def registry_list(tmp: Path) -> str:
    env = project_env(tmp)
    return run(["recops", "registry", "list", "--all", *tiny_overrides(tmp)], PROJECT_ROOT, env)


def client_for(tmp: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def audit(tmp: Path) -> list[dict[str, object]]:
    path = tmp / "reports" / "registry" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_kill_while_logging_leaves_no_run_running(tmp_path: Path) -> None:
    initialised_store(tmp_path)
    killed_at("run-logging", tmp_path, "model=popularity")
    client = client_for(tmp_path)
    (experiment,) = [e for e in client.search_experiments() if e.name == "recops"]
    (killed,) = client.search_runs([experiment.experiment_id])
    assert killed.info.status == "RUNNING"  # what the kill left behind
    run(
        [sys.executable, "-m", "pipelines.train", *tiny_overrides(tmp_path), "model=popularity"],
        PROJECT_ROOT,
        project_env(tmp_path),
    )
    after = client.get_run(killed.info.run_id)
    assert after.info.status == "FAILED"
    assert "died" in after.data.tags["recops.failed_reason"]


def test_a_kill_during_registration_is_archived_with_an_audit_record(tmp_path: Path) -> None:
    initialised_store(tmp_path)
    killed_at("registration-created", tmp_path, "model=popularity")
    client = client_for(tmp_path)
    (orphan,) = client.search_model_versions(f"name='{MODEL}'")
    assert orphan.tags["recops.registration"].startswith("pending")
    assert not client.get_registered_model(MODEL).aliases
    assert not (tmp_path / "reports" / "registry" / "audit.jsonl").exists()

    out = registry_list(tmp_path)  # the next registry command recovers
    version = client.get_model_version(MODEL, "1")
    assert version.tags["recops.registration"] == "complete"
    assert "recops.archived" in version.tags
    records = audit(tmp_path)
    assert [(r["action"], r["from_version"]) for r in records] == [("archive", "1")]
    assert "registration interrupted" in str(records[0]["reason"])
    assert "archived" in out

    # a re-run registers the same run again, completely, as the champion
    run(
        [sys.executable, "-m", "pipelines.train", *tiny_overrides(tmp_path), "model=popularity"],
        PROJECT_ROOT,
        project_env(tmp_path),
    )
    aliases = client.get_registered_model(MODEL).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"candidate": "2", "champion": "2"}
    assert client.get_model_version(MODEL, "2").tags["recops.registration"] == "complete"
