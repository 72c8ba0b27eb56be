"""Real `bentoml serve` processes on 127.0.0.1 against a real MLflow registry (temp store):
live mode (answers, metrics, hot reload after a promotion, rollback within one poll, a broken
version keeps the old model, canary split) and the packaged bento serving with no registry.
Faults and hostile input (issue 12): admin token, oversized bodies, one log line per rejected
request, a restart on a broken champion, a killed MLflow server, a killed arbiter, `make serve`
stopped by SIGTERM, a restart on a taken port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from mlflow.tracking import MlflowClient

from recops.serving.canary import in_canary
from recops.serving.launch import check_port

from .conftest import PROJECT_ROOT
from .servers import bentoml_service, free_port, ready, server_env, start_bentoml, stop, wait_until
from .worlds import NAME, tiny_registry

pytestmark = pytest.mark.integration
POLL_S = 1.0
SHARE = 0.5
LIVE_OVERRIDES = (
    f"poll_interval_s={POLL_S} sync_interval_s=0.2 canary.share={SHARE} workers=2 "
    "precompute.enabled=false cache.warm_users=50"
)
TOKEN = "integration-admin-token"


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
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """v1: ALS champion; v2: popularity (registered, not promoted); v3: artifacts deleted."""
    tiny = tiny_registry(tmp_path_factory.mktemp("serving"), "popularity")
    assert tiny.broken == "3"
    return Registry(tiny.tmp, tiny.uri, tiny.active, tiny.items)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    token: str | None = None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, headers=self._auth(path))

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body or {}, timeout=30, headers=self._auth(path))

    def _auth(self, path: str) -> dict[str, str]:
        admin = path.startswith(("/admin/", "/cache/clear"))
        return {"Authorization": f"Bearer {self.token}"} if admin and self.token else {}

    def recommend(self, user: str, k: int = 5) -> dict[str, Any]:
        r = self.post("/recommend", {"user_id": user, "k": k})
        assert r.status_code == 200, r.text
        return dict(r.json())


def serve(
    args: list[str], cwd: Path, env: dict[str, str], log: Path, workers: int = 2
) -> Iterator[Server]:
    """`bentoml serve ...` with every worker's model loaded (a request may reach any of them);
    stopped (the whole group) afterwards."""
    with bentoml_service(args, cwd, env, log, workers=workers) as (proc, url):
        yield Server(url, proc, log, env.get("RECOPS_ADMIN_TOKEN"))


@pytest.fixture(scope="module")
def live(registry: Registry) -> Iterator[Server]:
    env = server_env(
        registry.tmp,
        MLFLOW_TRACKING_URI=registry.uri,
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES=f"{LIVE_OVERRIDES} last_good_dir={registry.tmp / 'last_good'}",
        RECOPS_ADMIN_TOKEN=TOKEN,
    )
    yield from serve(["service:RecOps"], PROJECT_ROOT / "bentos", env, registry.tmp / "live.log")


def versions_seen(server: Server, users: list[str]) -> set[str]:
    return {server.recommend(u)["model_version"] for u in users}


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
    assert wait_until(lambda: versions_seen(live, users) == {"2"}, timeout=5)
    assert live.recommend(registry.users[0])["source"] == "model"
    # rollback: only the alias moves back; the poll must pick it up within one interval
    registry.champion("1")
    moved = time.monotonic()
    assert wait_until(lambda: versions_seen(live, users) == {"1"}, timeout=POLL_S + 3)
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
        # the loader refuses v3 before reading it (no recorded checksums; before: no MLmodel)
        assert info["version"] == "1" and info["last_error"]["version"] == "3"
        assert "ArtifactIntegrityError" in info["last_error"]["error"]
    finally:
        registry.champion("1")
        live.post("/admin/reload")


def test_canary_split_and_end(live: Server, registry: Registry) -> None:
    registry.client.set_registered_model_alias(NAME, "challenger", "2")
    sample = registry.users[:60]
    try:
        assert wait_until(
            lambda: live.get("/rollout/status").json()["canary"]["active"], timeout=POLL_S + 3
        )
        expected = {u: "2" if in_canary(u, SHARE, "recops-canary") else "1" for u in sample}

        def routed_as_expected() -> bool:  # each worker picks up the challenger on its own poll
            return all(live.recommend(u)["model_version"] == v for u, v in expected.items())

        assert wait_until(routed_as_expected, timeout=POLL_S + 5)
        for user, version in expected.items():  # once both workers route, it is sticky
            for _ in range(3):
                assert live.recommend(user)["model_version"] == version, user
        status = live.get("/rollout/status").json()
        assert status["champion"]["version"] == "1" and status["challenger"]["version"] == "2"
        assert status["champion"]["requests"] > 0 and status["challenger"]["requests"] > 0
    finally:
        registry.client.delete_registered_model_alias(NAME, "challenger")
    assert wait_until(lambda: versions_seen(live, sample[:20]) == {"1"}, timeout=POLL_S + 3)
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


# -- faults and hostile input (issue 12) ---------------------------------------------------
FAILURES = 'model_reload_total{result="failure"}'


def metric_value(text: str, series: str) -> float:
    """The summed value of a series (over the workers' label sets) in Prometheus text."""
    name, _, labels = series.partition("{")
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(p in line for p in labels.rstrip("}").split(",") if p):
            total += float(line.split()[-1])
    return total


def quick_env(
    registry: Registry, folder: str, uri: str | None = None, **extra: str
) -> dict[str, str]:
    """A one-worker server of the registry's champion with its own last-good folder."""
    overrides = (
        "workers=1 poll_interval_s=30 sync_interval_s=0.2 precompute.enabled=false "
        f"canary.enabled=false cache.warm_users=5 last_good_dir={registry.tmp / folder}"
    )
    return server_env(
        registry.tmp,
        MLFLOW_TRACKING_URI=uri or registry.uri,
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES=overrides,
        RECOPS_ADMIN_TOKEN=TOKEN,
        **extra,
    )


def test_admin_endpoints_need_the_token(live: Server) -> None:
    for path in ("/admin/reload", "/cache/clear", "/admin/reload/status"):
        method = httpx.get if path.endswith("status") else httpx.post
        assert method(live.url + path, timeout=30).status_code == 401, path
        wrong = method(live.url + path, timeout=30, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
    assert live.post("/cache/clear").status_code == 200
    assert live.post("/admin/reload").status_code == 200


def test_oversized_bodies_are_refused_before_parsing(live: Server, registry: Registry) -> None:
    json_type = {"content-type": "application/json"}
    for size in (20_000_000, 100_000_000):
        body = b'{"user_id": "u", "pad": "' + b"x" * size + b'"}'
        r = httpx.post(live.url + "/recommend", content=body, headers=json_type, timeout=60)
        assert r.status_code == 413, r.text
        assert "larger than 65536 bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:
        yield b'{"user_id": "u", "pad": "'
        for _ in range(64):
            yield b"y" * 16_384
        yield b'"}'

    r = httpx.post(live.url + "/recommend", content=chunks(), headers=json_type, timeout=60)
    assert r.status_code == 413
    assert live.recommend(registry.users[0])["source"] == "model"


def test_a_rejected_request_is_one_log_line(live: Server) -> None:
    before = len(live.log.read_bytes())
    assert live.post("/recommend", {"user_id": "u", "k": 0}).status_code == 400
    assert wait_until(lambda: b"rejected POST /recommend 400" in live.log.read_bytes(), 5)
    time.sleep(0.5)
    new = live.log.read_bytes()[before:].decode(errors="replace")
    assert new.count("rejected POST /recommend 400") == 1, new
    assert "k: Input should be greater than or equal to 1" in new
    assert "Traceback" not in new and "ERROR" not in new, new


def test_a_restart_on_a_broken_champion_serves_the_previous_champion(registry: Registry) -> None:
    client = registry.client
    history = client.get_registered_model(NAME).tags.get("recops.champion_history")
    client.set_registered_model_tag(NAME, "recops.champion_history", json.dumps(["1"]))
    registry.champion("3")  # forced in: its artifacts are gone
    try:
        env = quick_env(registry, "last_good_broken")
        for server in serve(
            ["service:RecOps"], PROJECT_ROOT / "bentos", env, registry.tmp / "broken.log", workers=1
        ):
            ready = server.get("/readyz")
            assert ready.status_code == 200
            degraded = ready.json()["degraded"]
            assert degraded["serving_version"] == "1" and degraded["wanted_version"] == "3"
            assert degraded["serving_from"] == "registry (past champion)"
            assert "champion v3 cannot load" in degraded["reason"]
            info = server.get("/model_info").json()
            assert info["version"] == "1" and info["degraded"] == degraded
            body = server.recommend(registry.users[0])
            assert body["model_version"] == "1" and body["source"] == "model"
            text = server.get("/metrics").text
            assert metric_value(text, "model_degraded") == 1.0
            assert metric_value(text, FAILURES) >= 1
    finally:
        registry.champion("1")
        client.set_registered_model_tag(NAME, "recops.champion_history", history or "[]")


@contextlib.contextmanager
def mlflow_server(registry: Registry, log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`mlflow server` on the registry's store, in its own process group."""
    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        registry.uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).is_success
            except httpx.TransportError:
                return False

        assert wait_until(healthy, 60), log.read_text()[-2000:]
        yield port, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            stop(proc)


def readyz(server_url: str) -> tuple[int, dict[str, Any]]:
    try:
        r = httpx.get(server_url + "/readyz", timeout=10)
        return r.status_code, r.json()
    except (httpx.TransportError, ValueError):
        return 0, {}


def test_a_killed_registry_is_reported_at_once(registry: Registry) -> None:
    bentos = PROJECT_ROOT / "bentos"
    logs = [registry.tmp / f"dead-{i}.log" for i in range(3)]
    with mlflow_server(registry, registry.tmp / "mlflow-server.log") as (port, mlflow_proc):
        uri = f"http://alice:s3cret-pass@127.0.0.1:{port}"
        where = f"registry unreachable at http://alice:***@127.0.0.1:{port}"
        env = quick_env(registry, "last_good_dead", uri)
        for server in serve(["service:RecOps"], bentos, env, logs[0], workers=1):
            assert server.recommend(registry.users[0])["model_version"] == "1"
            os.killpg(mlflow_proc.pid, signal.SIGKILL)
            mlflow_proc.wait(10)
            started = time.monotonic()
            r = server.post("/admin/reload")
            assert time.monotonic() - started < 8 and r.status_code in (200, 202), r.text
            assert metric_value(server.get("/metrics").text, FAILURES) >= 1
            status, body = readyz(server.url)
            assert status == 200 and body["last_error"]["error"].startswith(where), body
            assert server.recommend(registry.users[0])["model_version"] == "1"
        # a restart while the registry is down: the local last-good copy, reported degraded
        for server in serve(["service:RecOps"], bentos, env, logs[1], workers=1):
            status, body = readyz(server.url)
            assert status == 200 and body["degraded"]["serving_version"] == "1", body
            assert body["degraded"]["reason"].startswith(where)
            assert body["degraded"]["serving_from"] == "last-good copy"
            assert metric_value(server.get("/metrics").text, "model_degraded") == 1.0
            assert server.recommend(registry.users[0])["model_version"] == "1"
        # no copy: not ready, saying why within seconds
        proc, url = start_bentoml(
            ["service:RecOps"], bentos, quick_env(registry, "no_copy", uri), logs[2]
        )
        try:
            assert wait_until(lambda: where in str(readyz(url)[1].get("reason")), 40), (
                readyz(url),
                logs[2].read_text()[-2000:],
            )
            assert readyz(url)[0] == 503
        finally:
            stop(proc)
    for log in logs:
        assert "s3cret-pass" not in log.read_text()


def serve_env_for_cli(registry: Registry, port: int, folder: str) -> dict[str, str]:
    env = quick_env(registry, folder, PORT=str(port))
    env["RECOPS_SERVE_OVERRIDES"] = env["RECOPS_SERVE_OVERRIDES"].replace("workers=1", "workers=2")
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    assert wait_until(lambda: ready(url, proc, log), 180), log.read_text()[-3000:]


def test_a_restart_on_a_taken_port_says_so_in_one_line(live: Server, registry: Registry) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "recops.cli", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=serve_env_for_cli(registry, port, "unused"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and time.monotonic() - started < 60, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    assert f"port {port} on 127.0.0.1 is already in use by pid {live.proc.pid}" in errors[0]


def test_a_killed_arbiter_takes_its_workers_along(registry: Registry) -> None:
    port = free_port()
    log = registry.tmp / "orphans.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recops.cli", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=serve_env_for_cli(registry, port, "last_good_orphans"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    workers: list[psutil.Process] = []
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log)
        arbiter = psutil.Process(proc.pid)  # `recops serve` became the arbiter (exec)
        assert "bentoml" in " ".join(arbiter.cmdline())
        workers = arbiter.children(recursive=True)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, [p.cmdline() for p in alive]
        check_port("127.0.0.1", port)  # a restart can bind it
        assert "the BentoML arbiter (pid" in log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            stop(proc)
        for worker in workers:  # orphans, if the test failed
            with contextlib.suppress(psutil.Error):
                worker.kill()


def test_make_serve_stops_with_its_process_group(registry: Registry) -> None:
    port = free_port()
    log = registry.tmp / "make-serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "-o", "install", "serve"],
            cwd=PROJECT_ROOT,
            env=serve_env_for_cli(registry, port, "last_good_make"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log)
        group = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(group) >= 3  # make, the arbiter, its workers
        os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(group, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        check_port("127.0.0.1", port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            stop(proc)
