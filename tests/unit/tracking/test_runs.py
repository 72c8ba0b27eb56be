"""Stale RUNNING runs: only those whose owner process on this host is gone become FAILED."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from mlflow.tracking import MlflowClient

from recops.tracking.runs import OWNER_TAG, fail_stale_runs, owner_alive, owner_tags


def dead_owner() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return json.dumps({"host": socket.gethostname(), "pid": proc.pid, "start": None})


def test_owner_liveness() -> None:
    assert owner_alive(owner_tags()[OWNER_TAG]) is True
    assert owner_alive(dead_owner()) is False
    assert owner_alive(json.dumps({"host": "elsewhere", "pid": 1})) is None
    assert owner_alive("not json") is None


def test_only_runs_of_dead_processes_are_failed(mlflow_store: str) -> None:
    client = MlflowClient()
    experiment = client.create_experiment("stale")
    dead = client.create_run(experiment, tags={OWNER_TAG: dead_owner()}).info.run_id
    alive = client.create_run(experiment, tags=owner_tags()).info.run_id
    foreign = client.create_run(experiment, tags={OWNER_TAG: json.dumps({"host": "x", "pid": 1})})
    reopened = client.create_run(experiment, tags={OWNER_TAG: dead_owner()}).info.run_id
    client.set_terminated(reopened, "FINISHED")
    client.update_run(reopened, "RUNNING")  # a later stage resumed it
    assert fail_stale_runs(client) == [dead]
    status = {r: client.get_run(r).info.status for r in (dead, alive, reopened)}
    assert status == {dead: "FAILED", alive: "RUNNING", reopened: "RUNNING"}
    assert client.get_run(foreign.info.run_id).info.status == "RUNNING"
    assert "died" in client.get_run(dead).data.tags["recops.failed_reason"]
