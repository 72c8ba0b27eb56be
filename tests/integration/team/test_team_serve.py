"""`make serve` (live mode, i.e. `recops serve` exec'ing `bentoml serve`) on a machine whose
environment points at the team MLflow server: it serves the server's champion."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from ..conftest import PROJECT_ROOT, tiny_overrides
from ..servers import free_port, server_env, stop
from .engines import MlflowServer, client_env

pytestmark = pytest.mark.integration
NAME = "team-make-serve"
SMALL = {"data.source.n_users": 200, "data.source.n_items": 80, "data.source.n_events": 6000}


# over 20 s: in `make test-all`, to keep the default suite under 15 minutes
@pytest.mark.slow
def test_make_serve_follows_the_team_servers_champion(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    env = client_env(mlflow_server)
    overrides = tiny_overrides(tmp_path, **SMALL, **{"registry.model_name": NAME})
    train = [sys.executable, "-m", "pipelines.train", *overrides, "model=popularity",
             f"experiment={NAME}", f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    done = subprocess.run(
        train, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    champion = MlflowClient(mlflow_server.uri).get_model_version_by_alias(NAME, "champion")

    port, log = free_port(), tmp_path / "make-serve.log"
    serve_env = server_env(tmp_path, RECOPS_ROOT=str(PROJECT_ROOT), PORT=str(port))
    serve_env.update({k: v for k, v in env.items() if k.startswith(("MLFLOW", "AWS"))})
    serve_env["RECOPS_SERVE_OVERRIDES"] = (
        f"model_name={NAME} workers=1 precompute.enabled=false cache.size=0"
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "-o", "install", "serve"], cwd=PROJECT_ROOT, env=serve_env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=5).is_success:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(log.read_text()[-3000:])
        info = httpx.get(f"{url}/model_info", timeout=60).json()
        assert (info["registered_model"], str(info["version"])) == (NAME, str(champion.version))
        answer = httpx.post(f"{url}/recommend", json={"user_id": "u00001", "k": 3}, timeout=60)
        assert answer.status_code == 200 and answer.json()["model_version"] == str(champion.version)
    finally:
        stop(proc)
