"""`recops ui` / `make ui`: the MLflow UI on the project's store, opened on the Model-training
runs view of the project's experiment.

MLflow 3's UI opens an experiment on its GenAI overview unless the URL asks for
`workflowType=machine_learning`; RecOps prints that URL. For a SQLite store the UI server is
started here (127.0.0.1, its own process group, stopped with the group on Ctrl-C); for a
tracking server the URL on that server is printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from recops.errors import StoreUnreachableError
from recops.redaction import redact
from recops.tracking.store import artifact_location_for, configure_tracking

RUNS_VIEW = "#/experiments/{id}?workflowType=machine_learning"
_START_TIMEOUT_S = 300.0


def experiment_url(base: str, experiment_id: str | None) -> str:
    """The Model-training runs view of `experiment_id` (the experiment list when None)."""
    base = base.rstrip("/")
    return f"{base}/{RUNS_VIEW.format(id=experiment_id)}" if experiment_id else f"{base}/"


def experiment_id(name: str) -> str | None:
    found = MlflowClient().get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


def ui_command(uri: str, host: str, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    location = artifact_location_for(uri)
    if location is not None:
        cmd += ["--default-artifact-root", location]
    return [*cmd, "--host", host, "--port", str(port), "--workers", "1"]


def start_ui(uri: str, host: str, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`mlflow ui` in its own process group; returns once `/health` answers."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    # no background job workers: 2 processes instead of ~13 (the UI does not need them)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    proc = subprocess.Popen(
        ui_command(uri, host, port), stdout=out, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StoreUnreachableError(
                f"the MLflow UI exited with code {proc.returncode} (is port {port} in use?)"
            )
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    stop_ui(proc)
    raise StoreUnreachableError(
        f"the MLflow UI did not answer on {host}:{port} within {_START_TIMEOUT_S:.0f} s"
    )


def stop_ui(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (mlflow ui spawns workers that outlive its parent)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def run_ui(experiment: str, host: str, port: int, say: Callable[[str], None]) -> None:
    """Start the UI for a SQLite store (until interrupted) or point at the tracking server."""
    uri = configure_tracking()
    if not uri.startswith("sqlite:"):
        say(experiment_url(redact(uri), experiment_id(experiment)))
        return
    proc = start_ui(uri, host, port)
    try:
        say(experiment_url(f"http://{host}:{port}", experiment_id(experiment)))
        say("(Ctrl-C stops the UI)")
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_ui(proc)
