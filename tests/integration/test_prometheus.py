"""A real Prometheus (Debian `prometheus`) scraping a real `bentoml serve` with the rules of
bentos/prometheus: load-test traffic (`recops loadtest`, which also must exit 1 on a missed SLO)
fills the recording rules, every Grafana panel's query runs without error, a drifted drift
summary fires HighDataDrift, a force-promoted broken model fires ModelLoadFailure, stopping
the service fires ServiceDown.

Test copy of the rules: only ServiceDown's `for: 1m` is shortened (to 2 s) so the module stays
within ~1-2 minutes; every other rule is used as shipped (scrape/evaluation every second).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .conftest import PROJECT_ROOT
from .servers import bentoml_service, free_port, server_env, stop, wait_until
from .worlds import tiny_registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus not installed (Debian `prometheus`; `make system`)",
    ),
]
RULES = PROJECT_ROOT / "bentos" / "prometheus" / "rules.yml"
DASHBOARD = PROJECT_ROOT / "bentos" / "grafana" / "recops.json"
FEATURES = ("user_activity", "item_popularity", "category", "event_type")


@dataclass
class World:
    tmp: Path
    uri: str
    users_csv: Path
    drift_summary: Path
    broken: str  # a version whose artifacts are gone


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """v1: ALS champion of a tiny world; v2 (`broken`): a copy of it whose artifacts are gone."""
    tiny = tiny_registry(tmp_path_factory.mktemp("prometheus"))
    users_csv = tiny.tmp / "users.csv"
    users_csv.write_text("user_id\n" + "\n".join(tiny.users) + "\n")
    drift = tiny.tmp / "drift" / "summary.json"
    drift.parent.mkdir()
    write_drift(drift, dict.fromkeys(FEATURES, 0.01))
    return World(tiny.tmp, tiny.uri, users_csv, drift, tiny.broken)


def write_drift(path: Path, psi: dict[str, float]) -> None:
    """A drift summary.json as `recops drift` writes it (the fields the service reads)."""
    body = {
        "schema_version": 1,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "features": {f: {"psi": v, "drifted": v >= 0.2} for f, v in psi.items()},
        "max_psi": max(psi.values()),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


@dataclass
class Service:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def service(world: World) -> Iterator[Service]:
    overrides = (
        "poll_interval_s=1 sync_interval_s=0.2 workers=2 precompute.enabled=false "
        f"cache.warm_users=50 drift_summary={world.drift_summary}"
    )
    env = server_env(
        world.tmp,
        MLFLOW_TRACKING_URI=world.uri,
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES=overrides,
    )
    log = world.tmp / "serve.log"
    bentos = PROJECT_ROOT / "bentos"
    with bentoml_service(["service:RecOps"], bentos, env, log, workers=2, timeout=90) as started:
        yield Service(started[1], started[0], log)  # the last test stops it itself


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def alerts(self, name: str, state: str | None = None) -> list[dict[str, Any]]:
        found = httpx.get(self.url + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [
            a
            for a in found
            if a["labels"]["alertname"] == name and (state is None or a["state"] == state)
        ]


def rules_copy(tmp: Path) -> Path:
    """The shipped rules with ServiceDown's `for` shortened to 2 s (see the module docstring)."""
    spec = yaml.safe_load(RULES.read_text())
    for group in spec["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "ServiceDown":
                rule["for"] = "2s"
    path = tmp / "rules.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def prometheus(world: World, service: Service) -> Iterator[Prometheus]:
    folder = world.tmp / "prometheus"
    folder.mkdir()
    target = service.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_copy(folder))],
        "scrape_configs": [{"job_name": "recops", "static_configs": [{"targets": [target]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={folder / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={folder / 'data'}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}")
    try:

        def scraped() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return any(s["value"][1] == "1" for s in prom.query('up{job="recops"}'))
            except httpx.TransportError:
                return False

        assert wait_for(scraped, 30), log.read_text()[-3000:]
        yield prom
    finally:
        stop(proc)


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    return wait_until(check, timeout, every=0.5)


def loadtest(service: Service, world: World, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "recops.cli", "loadtest", "--url", service.url]
    cmd += ["--users-from", str(world.users_csv), *args]
    env = server_env(world.tmp, RECOPS_ROOT=str(PROJECT_ROOT))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_loadtest_reports_slos_and_traffic_fills_the_recording_rules(
    world: World, service: Service, prometheus: Prometheus
) -> None:
    lenient = ("--set", "serve.slo.p95_ms=5000", "--set", "serve.slo.p99_ms=10000")
    run = loadtest(service, world, "--duration", "4s", "--concurrency", "4", "--json", *lenient)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["requests"] > 20 and report["slo_met"] and report["error_rate"] == 0
    assert 0 < report["fallback_share"] < 1  # unknown users got the fallback, known the model
    missed = loadtest(
        service, world, "--duration", "2s", "--concurrency", "2", "--set", "serve.slo.p95_ms=0.001"
    )
    assert missed.returncode == 1, missed.stdout + missed.stderr
    assert "MISSED" in missed.stderr and "p95 latency" in missed.stderr
    series = (
        "recops:recommend_requests:rate5m",
        "recops:recommend_error_ratio:rate5m",
        "recops:recommend_error_ratio:rate1h",
        "recops:availability:ratio1h",
        "recops:error_budget_burn:rate1h",
        "recops:recommend_latency_seconds:p50_5m",
        "recops:recommend_latency_seconds:p95_5m",
        "recops:recommend_latency_seconds:p99_5m",
        "recops:recommend_fallback_ratio:rate5m",
        "recops:recommend_cache_hit_ratio:rate10m",
        "recops:model_reload_failures:increase5m",
        "recops:recommend_answers_share:rate5m",
        "recops:data_drift_psi:max",
    )
    assert wait_for(lambda: all(prometheus.query(s) for s in series), 20), {
        s: prometheus.query(s) for s in series
    }
    rate = float(prometheus.query("recops:recommend_requests:rate5m")[0]["value"][1])
    assert rate > 0
    psi = {r["metric"]["feature"] for r in prometheus.query("recops:data_drift_psi:max")}
    assert psi == set(FEATURES)
    version = prometheus.query('model_version_info{role="champion"} == 1')
    assert [v["metric"]["version"] for v in version] == ["1"]


def test_every_dashboard_query_runs(prometheus: Prometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    empty = [e for e in exprs if not prometheus.query(e)]  # a query error fails in query()
    # with traffic, only the alerts table may be empty (nothing fires yet)
    assert empty in ([], ['ALERTS{alertstate="firing"}']), empty


def test_drifted_summary_fires_high_data_drift(world: World, prometheus: Prometheus) -> None:
    write_drift(world.drift_summary, {**dict.fromkeys(FEATURES, 0.01), "category": 0.62})

    def fired() -> bool:
        return any(
            a["labels"]["feature"] == "category" and a["labels"]["severity"] == "critical"
            for a in prometheus.alerts("HighDataDrift", "firing")
        )

    assert wait_for(fired, 20), prometheus.alerts("HighDataDrift")
    assert not [
        a for a in prometheus.alerts("HighDataDrift") if a["labels"]["feature"] != "category"
    ]


def test_force_promoted_broken_model_fires_model_load_failure(
    world: World, service: Service, prometheus: Prometheus
) -> None:
    env = server_env(world.tmp, MLFLOW_TRACKING_URI=world.uri, RECOPS_ROOT=str(PROJECT_ROOT))
    cmd = [sys.executable, "-m", "recops.cli", "promote", "--version", world.broken]
    cmd += ["--to", "champion"]
    promote = subprocess.run(
        [*cmd, "--force", "--reason", "alert test: broken version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert promote.returncode == 0, promote.stdout + promote.stderr
    for _ in range(8):  # an operator retrying: each reload fails on both workers
        report = httpx.post(service.url + "/admin/reload", json={}, timeout=30).json()
        assert report["champion"]["result"] == "failure", report
        time.sleep(0.5)
    assert httpx.get(service.url + "/readyz", timeout=5).status_code == 200  # v1 still serves

    def raised() -> bool:
        return bool(prometheus.alerts("ModelLoadFailure", "firing"))

    assert wait_for(raised, 20), (
        prometheus.query("recops:model_reload_failures:increase5m"),
        prometheus.alerts("ModelLoadFailure"),
    )
    assert prometheus.alerts("ModelLoadFailure")[0]["labels"]["action"] == "rollback"


def test_stopping_the_service_fires_service_down(service: Service, prometheus: Prometheus) -> None:
    assert not prometheus.alerts("ServiceDown")
    stop(service.proc)
    assert wait_for(lambda: bool(prometheus.alerts("ServiceDown", "firing")), 20), (
        prometheus.query('up{job="recops"}'),
        prometheus.alerts("ServiceDown"),
    )
