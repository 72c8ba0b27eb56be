"""Every RecOps command against the team MLflow server (PostgreSQL store, artifacts proxied
to S3): train -> register -> promote -> rollback with a live `bentoml serve` following the
server's champion, two concurrent promotions from two processes (the registry's tag lock),
S3-direct artifacts, and a server that goes away mid-command."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from ..conftest import PROJECT_ROOT, tiny_overrides
from ..servers import bentoml_service, server_env
from .engines import MlflowServer, S3Server, client_env

pytestmark = pytest.mark.integration
NAME = "team-e2e"
SMALL = {"data.source.n_users": 200, "data.source.n_items": 80, "data.source.n_events": 6000}


@dataclass
class Team:
    tmp: Path
    server: MlflowServer
    s3: S3Server

    @property
    def overrides(self) -> list[str]:
        extra = {"registry.model_name": NAME, "experiment": NAME}
        return tiny_overrides(self.tmp, **SMALL, **extra)

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.server.uri)

    def run(self, *cmd: str, env: dict[str, str] | None = None, ok: bool = True) -> str:
        proc = subprocess.run(
            [*cmd], cwd=PROJECT_ROOT, env=env or client_env(self.server), capture_output=True,
            text=True, timeout=900, check=False,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert (proc.returncode == 0) == ok, f"{' '.join(cmd)} -> {proc.returncode}:\n{out}"
        return out

    def recops(self, *args: str, ok: bool = True) -> str:
        return self.run(sys.executable, "-m", "recops.cli", *args, *self.overrides, ok=ok)

    def train(self, *overrides: str) -> str:
        hydra = f"hydra.run.dir={self.tmp / 'hydra'}"
        return self.run(sys.executable, "-m", "pipelines.train", *self.overrides, *overrides, hydra)

    def champion(self) -> str:
        return str(self.client.get_model_version_by_alias(NAME, "champion").version)


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer, s3: S3Server
) -> Team:
    """v1 (ALS) registered and champion through `python -m pipelines.train` on the server."""
    team = Team(tmp_path_factory.mktemp("team"), mlflow_server, s3)
    team.train("model=als", "model.factors=8", "model.show_progress=false")
    assert team.champion() == "1"
    return team


@pytest.fixture(scope="module")
def live(team: Team) -> Iterator[str]:
    """`bentoml serve` from bentos/ in live mode, following the server's champion."""
    env = server_env(
        team.tmp,
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES=f"model_name={NAME} poll_interval_s=1 workers=1 "
        "precompute.enabled=false cache.size=0",
    )
    env.update(
        {k: v for k, v in client_env(team.server).items() if k.startswith(("MLFLOW", "AWS"))}
    )
    bentos, log = PROJECT_ROOT / "bentos", team.tmp / "live.log"
    with bentoml_service(["service:RecOps"], bentos, env, log, timeout=240) as (_, url):
        yield url


def served_version(url: str, timeout: float = 60) -> str:
    return str(httpx.get(f"{url}/model_info", timeout=timeout).json()["version"])


def wait_for_version(url: str, version: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served_version(url) == version:
            return
        time.sleep(0.5)
    assert served_version(url) == version


def test_train_register_promote_rollback_and_the_live_service_follows(
    team: Team, live: str, s3: S3Server
) -> None:
    assert served_version(live) == "1"
    users = [u for u in ["u00001", "u00002", "u00003"]]
    answer = httpx.post(f"{live}/recommend", json={"user_id": users[0], "k": 3}, timeout=60)
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    # the model's files went through the server to S3
    assert any(key.endswith("MLmodel") for key in s3.object_keys("mlartifacts/"))

    team.train("model=popularity")  # v2: registered, the gate keeps v1 as champion
    team.recops("promote", "--version", "2", "--to", "challenger")
    team.recops("promote", "--version", "2", "--to", "champion", "--force", "--reason", "e2e")
    assert team.champion() == "2"
    wait_for_version(live, "2")
    answer = httpx.post(f"{live}/recommend", json={"user_id": users[1], "k": 3}, timeout=60)
    assert answer.json()["model_version"] == "2"

    out = team.recops("rollback", "--reason", "e2e")
    assert "rollback champion v2 -> v1" in out
    wait_for_version(live, "1")
    listing = team.recops("registry", "list")
    assert "champion" in listing


def test_two_concurrent_promotions_against_the_server_leave_one_winner(team: Team) -> None:
    team.train("model=popularity")
    version = str(max(int(v.version) for v in team.client.search_model_versions(f"name='{NAME}'")))
    team.recops("promote", "--version", version, "--to", "challenger")
    before = team.champion()
    cmd = [sys.executable, "-m", "recops.cli", "promote", "--version", version, "--to",
           "champion", "--force", "--reason", "race", *team.overrides]  # fmt: skip
    envs = [client_env(team.server, RECOPS_ACTOR=f"proc-{i}") for i in range(2)]
    procs = [promote_process(cmd, env) for env in envs]
    outcomes = [(p.wait(timeout=600), p.communicate()) for p in procs]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    loser = next(out + err for code, (out, err) in outcomes if code == 1)
    clear = (
        f"champion changed from v{before} to v{version} while you were promoting v{version}",
        f"v{version} is already the champion",
        "registry is locked by",
    )
    assert any(message in loser for message in clear), loser
    assert "Traceback" not in loser
    assert team.champion() == version


def promote_process(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_worker_cycle_against_the_server(team: Team) -> None:
    """`recops worker run --once` reads the server's champion and logs its cycle there."""
    incoming, work = team.tmp / "incoming", team.tmp / "worker"
    incoming.mkdir(exist_ok=True)
    team.recops(
        "worker", "run", "--once", f"worker.incoming_dir={incoming}", f"worker.work_dir={work}"
    )
    experiment = team.client.get_experiment_by_name(f"{NAME}-worker")  # worker.experiment
    assert experiment is not None
    runs = team.client.search_runs([experiment.experiment_id])
    assert runs and "outcome" in runs[0].data.tags


def test_artifacts_straight_to_s3(team: Team, s3: S3Server) -> None:
    """An experiment whose artifact root is s3:// : the client writes to S3 itself
    (`MLFLOW_S3_ENDPOINT_URL`), the server only keeps the metadata."""
    experiment = "team-direct"
    team.client.create_experiment(experiment, artifact_location=f"s3://{s3.bucket}/direct")
    env = client_env(team.server, MLFLOW_S3_ENDPOINT_URL=s3.endpoint)
    hydra = f"hydra.run.dir={team.tmp / 'hydra-direct'}"
    team.run(
        sys.executable, "-m", "pipelines.train", *team.overrides, "model=popularity",
        f"experiment={experiment}", "register=false", hydra, env=env,
    )  # fmt: skip
    assert any(key.endswith("MLmodel") for key in s3.object_keys("direct/"))


def test_a_server_that_goes_away_is_a_clear_error_without_the_password(
    tmp_path: Path, mlflow_server: MlflowServer, s3: S3Server
) -> None:
    gone = MlflowServer(tmp_path / "gone", mlflow_server.postgres, s3, database="gone").start()
    uri = gone.uri.replace("http://", "http://alice:s3cret-pw@")
    env = {**client_env(gone, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"), "MLFLOW_TRACKING_URI": uri}
    cmd = [sys.executable, "-m", "pipelines.train", *tiny_overrides(tmp_path, **SMALL),
           "model=als", "model.iterations=60", "model.show_progress=false",
           f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    log = tmp_path / "train.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 300
        while "features:" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        gone.stop()  # mid-command: after the data is prepared, before the run is logged
        code = proc.wait(timeout=600)
    finally:
        gone.stop()
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code != 0, text
    assert "s3cret-pw" not in text
    assert f"127.0.0.1:{gone.port}" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
