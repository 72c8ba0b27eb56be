"""Real `bentoml serve` processes on 127.0.0.1 against a real MLflow registry (temp store):
live mode (answers, metrics, hot reload after a promotion, rollback within one poll, a broken
version keeps the old model, canary split) and the packaged bento serving with no registry."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from recops.config import compose
from recops.pipeline.stages import run_chain
from recops.serving.canary import in_canary
from recops.tracking.model_files import load_registered_recommender

from .conftest import PROJECT_ROOT, tiny_overrides
from .servers import server_env, start_bentoml, stop

pytestmark = pytest.mark.integration
NAME = "recops-recommender"
POLL_S = 1.0
SHARE = 0.5
LIVE_OVERRIDES = (
    f"poll_interval_s={POLL_S} sync_interval_s=0.2 canary.share={SHARE} workers=2 "
    "precompute.enabled=false cache.warm_users=50"
)


@dataclass
class Registry:
    tmp: Path
    uri: str
    users: list[str]  # model-served users of v1
    items: list[str]

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)

    def champion(self, version: str) -> None:
        self.client.set_registered_model_alias(NAME, "champion", version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """v1: ALS champion; v2: popularity (registered, not promoted); v3: artifacts deleted."""
    tmp = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("RECOPS_ROOT", str(PROJECT_ROOT))
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(uri)
        quiet = {"model.show_progress": "false"}
        first = run_chain(
            compose(tiny_overrides(tmp, model="als", **{"model.factors": 16}, **quiet))
        )
        assert first["registry"]["version"] == "1" and first["registry"]["promoted"]
        run_chain(compose(tiny_overrides(tmp, model="popularity")))
        client = MlflowClient(tracking_uri=uri)
        v1 = client.get_model_version(NAME, "1")
        copy = mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(tmp / "v3"))
        broken = client.create_model_version(NAME, source=copy, run_id=v1.run_id)
        assert str(broken.version) == "3"
        shutil.rmtree(copy)
        recommender = load_registered_recommender(MlflowClient(), NAME, "1")
        history = recommender.model.seen.getnnz(axis=1)
        users = [
            str(u) for u, n in zip(recommender.users.external_ids, history, strict=True) if n >= 5
        ]
        items = [str(i) for i in recommender.items.external_ids]
        client.set_registered_model_alias(NAME, "champion", "1")
        mlflow.set_tracking_uri(None)
        yield Registry(tmp, uri, users, items)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body or {}, timeout=30)

    def recommend(self, user: str, k: int = 5) -> dict[str, Any]:
        r = self.post("/recommend", {"user_id": user, "k": k})
        assert r.status_code == 200, r.text
        return dict(r.json())


def serve(
    args: list[str], cwd: Path, env: dict[str, str], log: Path, workers: int = 2
) -> Iterator[Server]:
    """`bentoml serve ...` in its own process group; stopped (the whole group) afterwards."""
    proc, url = start_bentoml(args, cwd, env, log)
    server = Server(url, proc, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited:\n{log.read_text()[-3000:]}"
            try:  # every worker has loaded its model (a request may reach any of them)
                stats = server.get("/stats").json()
                if stats.get("workers_ready") == workers and server.get("/readyz").is_success:
                    break
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"server not ready:\n{log.read_text()[-3000:]}")
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def live(registry: Registry) -> Iterator[Server]:
    env = server_env(
        registry.tmp,
        MLFLOW_TRACKING_URI=registry.uri,
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES=LIVE_OVERRIDES,
    )
    yield from serve(["service:RecOps"], PROJECT_ROOT / "bentos", env, registry.tmp / "live.log")


def versions_seen(server: Server, users: list[str]) -> set[str]:
    return {server.recommend(u)["model_version"] for u in users}


def eventually(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def champion_users(users: list[str]) -> list[str]:
    """Users outside the canary (they see the champion even while a challenger exists)."""
    return [u for u in users if not in_canary(u, SHARE, "recops-canary")][:12]


def test_live_server_answers_for_the_trained_champion(live: Server, registry: Registry) -> None:
    body = live.recommend(registry.users[0], k=5)
    assert body["source"] == "model" and body["model_version"] == "1" and len(body["items"]) == 5
    assert {"item_id", "score", "title", "category"} <= set(body["items"][0])
    new = live.recommend("a-brand-new-user", k=5)
    assert new["source"] == "fallback" and len(new["items"]) == 5
    assert live.post("/similar", {"item_id": "no-such-item"}).status_code == 404
    assert live.post("/recommend", {"user_id": "u", "k": -3}).status_code == 400
    info = live.get("/model_info").json()
    assert info["version"] == "1" and info["model_type"] == "als" and info["data_snapshot"]


def test_metrics_expose_the_named_series(live: Server, registry: Registry) -> None:
    live.recommend(registry.users[1])
    live.recommend("another-new-user")
    text = live.get("/metrics").text
    for series in (
        "recommend_requests_total{",
        "recommend_latency_seconds_bucket{",
        "recommend_fallback_total",
        'model_reload_total{result="success"}',
        'model_version_info{model_name="recops-recommender",model_type="als",role="champion",'
        'version="1"} 1.0',
        "bentoml_service_request_duration_seconds",
    ):
        assert series in text, series


def test_hot_reload_after_a_promotion_then_rollback_within_one_poll(
    live: Server, registry: Registry
) -> None:
    users = champion_users(registry.users)
    registry.champion("2")
    report = live.post("/admin/reload").json()
    assert report["serving"]["champion"]["version"] == "2", report
    # the worker that answered reloaded; the other one follows within a sync interval
    assert eventually(lambda: versions_seen(live, users) == {"2"}, timeout=5)
    assert live.recommend(registry.users[0])["source"] == "model"
    # rollback: only the alias moves back; the poll must pick it up within one interval
    registry.champion("1")
    moved = time.monotonic()
    assert eventually(lambda: versions_seen(live, users) == {"1"}, timeout=POLL_S + 3)
    assert time.monotonic() - moved <= POLL_S + 3


def test_a_broken_version_keeps_the_old_model_serving(live: Server, registry: Registry) -> None:
    users = champion_users(registry.users)
    registry.champion("3")
    try:
        report = live.post("/admin/reload").json()
        assert report["champion"]["result"] == "failure", report
        assert report["champion"]["kept"] == "1"
        time.sleep(POLL_S + 0.5)  # the other worker's poll fails too, and keeps v1
        assert versions_seen(live, users) == {"1"}
        assert live.get("/readyz").status_code == 200
        text = live.get("/metrics").text
        assert 'model_reload_total{result="failure"}' in text
        info = live.get("/model_info").json()
        assert info["version"] == "1" and "MLmodel" in str(info["last_error"])
    finally:
        registry.champion("1")
        live.post("/admin/reload")


def test_canary_split_and_end(live: Server, registry: Registry) -> None:
    registry.client.set_registered_model_alias(NAME, "challenger", "2")
    sample = registry.users[:60]
    try:
        assert eventually(
            lambda: live.get("/rollout/status").json()["canary"]["active"], timeout=POLL_S + 3
        )
        expected = {u: "2" if in_canary(u, SHARE, "recops-canary") else "1" for u in sample}

        def routed_as_expected() -> bool:  # each worker picks up the challenger on its own poll
            return all(live.recommend(u)["model_version"] == v for u, v in expected.items())

        assert eventually(routed_as_expected, timeout=POLL_S + 5)
        for user, version in expected.items():  # once both workers route, it is sticky
            for _ in range(3):
                assert live.recommend(user)["model_version"] == version, user
        status = live.get("/rollout/status").json()
        assert status["champion"]["version"] == "1" and status["challenger"]["version"] == "2"
        assert status["champion"]["requests"] > 0 and status["challenger"]["requests"] > 0
    finally:
        registry.client.delete_registered_model_alias(NAME, "challenger")
    assert eventually(lambda: versions_seen(live, sample[:20]) == {"1"}, timeout=POLL_S + 3)
    stats = live.get("/stats").json()
    assert stats["workers"] == 2 and stats["recommend"]["requests"] > 100


def test_packaged_bento_serves_without_a_registry(registry: Registry) -> None:
    env = server_env(registry.tmp, MLFLOW_TRACKING_URI=registry.uri, RECOPS_ROOT=str(PROJECT_ROOT))
    build = subprocess.run(
        [sys.executable, "-m", "recops.cli", "bento", "build"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    output = build.stdout + build.stderr
    assert "precomputed" in output and "bento recops:" in output
    # no registry, no project: an unreachable tracking URI and a foreign working directory
    offline = server_env(registry.tmp, MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    offline.pop("RECOPS_ROOT", None)
    elsewhere = registry.tmp / "elsewhere"
    elsewhere.mkdir()
    for server in serve(["recops:latest"], elsewhere, offline, registry.tmp / "bento.log"):
        info = server.get("/model_info").json()
        assert info["mode"] == "packaged" and info["version"] == "1" and info["precomputed"]
        body = server.recommend(registry.users[0])
        assert body["source"] == "model" and body["model_version"] == "1"
        assert server.recommend("nobody-at-all")["source"] == "fallback"
