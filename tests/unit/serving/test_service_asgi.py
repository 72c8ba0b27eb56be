"""The BentoML service class (bentos/service.py) as an ASGI app, on an in-memory registry:
every endpoint, every kind of bad input, reload, canary, metrics."""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from recops.serving import runtime as runtime_module
from recops.serving.admin import AdminAccess
from recops.serving.canary import in_canary

from .conftest import FakeSource, make_recommender, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SERVICE = Path(__file__).resolve().parents[3] / "bentos" / "service.py"
OVERRIDES = (
    "poll_interval_s=30 sync_interval_s=0.05 cache.warm_users=5 canary.share=0.5 reload_wait_s=1.5"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def registry() -> FakeSource:
    src = FakeSource("recops-recommender")
    src.versions = {
        "1": make_recommender(0),
        "2": make_recommender(1, factors=4),
        "3": FileNotFoundError("artifacts of v3 were deleted"),
        "4": make_recommender(2, factors=4),  # loaded only by the slow-reload test
    }
    return src


@pytest.fixture(scope="module")
def service(registry: FakeSource, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "RECOPS_SERVE_OVERRIDES",
            f"{OVERRIDES} state_dir={state} last_good_dir={state / 'last_good'}",
        )
        mp.setattr(runtime_module, "RegistrySource", lambda *a, **k: registry)
        spec = importlib.util.spec_from_file_location("recops_bento_service", SERVICE)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        yield module.RecOps


@pytest.fixture(scope="module")
def client(service: Any, registry: FakeSource) -> Iterator[TestClient]:
    """One app per process (BentoML registers its own metrics once): it starts with no
    champion in the registry, which `test_not_ready_until_a_champion_exists` looks at."""
    registry.aliases = {}
    with TestClient(service.to_asgi()) as c:
        assert wait_until(lambda: c.get("/model_info").json().get("last_error") is not None)
        r = c.post("/recommend", json={"user_id": "u10"})
        c.before_ready = {  # type: ignore[attr-defined]
            "readyz": c.get("/readyz").status_code,
            "readyz_body": c.get("/readyz").json(),
            "healthz": c.get("/healthz").status_code,
            "recommend": (r.status_code, r.json()),
            "model_info": c.get("/model_info").json(),
        }
        registry.aliases = {"champion": "1"}
        c.post("/admin/reload")
        assert wait_until(lambda: c.get("/readyz").status_code == 200)
        yield c


@pytest.fixture(autouse=True)
def champion_v1(request: pytest.FixtureRequest, registry: FakeSource) -> Iterator[None]:
    yield
    if "client" in request.fixturenames:
        registry.aliases = {"champion": "1"}
        request.getfixturevalue("client").post("/admin/reload")


def recommend(client: TestClient, **body: Any) -> Any:
    return client.post("/recommend", json=body)


def test_health_and_readiness(client: TestClient) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.get(path).status_code == 200


def test_recommend_known_user(client: TestClient) -> None:
    r = recommend(client, user_id="u10", k=4)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "model" and body["model_version"] == "1"
    assert body["model_alias"] in ("champion", "challenger") and len(body["items"]) == 4
    item = body["items"][0]
    assert {"item_id", "score", "rank", "title", "category", "brand", "price", "tags"} <= set(item)
    assert isinstance(item["item_id"], str) and item["rank"] == 1


def test_fallback_for_new_and_light_users(client: TestClient) -> None:
    new = recommend(client, user_id="someone-never-seen", k=3).json()
    assert new["source"] == "fallback" and len(new["items"]) == 3
    assert recommend(client, user_id="u0").json()["source"] == "fallback"  # 1 interaction
    ctx = recommend(client, user_id="newcomer", k=3, recent_item_ids=["i2"]).json()
    assert ctx["source"] == "fallback" and "i2" not in {x["item_id"] for x in ctx["items"]}


def test_filters_rerank_and_defaults(client: TestClient) -> None:
    body = recommend(client, user_id="u10", filters={"category": "games"}).json()
    assert len(body["items"]) == 10 or {x["category"] for x in body["items"]} == {"games"}
    assert {x["category"] for x in body["items"]} == {"games"}
    multi = recommend(client, user_id="u10", filters={"category": ["games", "books"]}).json()
    assert {x["category"] for x in multi["items"]} <= {"games", "books"}
    top = recommend(client, user_id="u11", k=1).json()["items"][0]["item_id"]
    excl = recommend(client, user_id="u11", k=5, filters={"exclude_item_ids": [top]}).json()
    assert top not in {x["item_id"] for x in excl["items"]}
    assert recommend(client, user_id="u12", rerank=True).json()["reranked"] is True
    assert recommend(client, user_id="u12").json()["reranked"] is False
    seen_ok = recommend(client, user_id="u12", exclude_seen=False, k=30).json()
    assert len(seen_ok["items"]) == 30


def test_diversity_explain_and_uncertainty(client: TestClient) -> None:
    r = recommend(client, user_id="u10", k=5, diversity=0.5, explain=True, uncertainty=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["diversity"] == 0.5 and len(body["items"]) == 5
    for item in body["items"]:
        assert item["score_low"] < item["score"] < item["score_high"]
        assert all(isinstance(c["item_id"], str) for c in item["because"])
    assert recommend(client, user_id="u10").json()["diversity"] == 0.0
    for bad, word in (({"diversity": 1.5}, "diversity"), ({"explain": "yes"}, "explain")):
        r = recommend(client, user_id="u10", **bad)
        assert r.status_code == 400 and word in r.text


def test_cache_hits_stats_and_clear(client: TestClient) -> None:
    client.post("/cache/clear")
    assert recommend(client, user_id="u20", k=3).json()["cached"] is False
    assert recommend(client, user_id="u20", k=3).json()["cached"] is True
    stats = client.get("/cache/stats").json()
    assert stats["hits"] >= 1 and stats["size"] >= 1 and stats["config"]["ttl_s"] == 300
    cleared = client.post("/cache/clear").json()
    assert cleared["cleared"] >= 1
    assert recommend(client, user_id="u20", k=3).json()["cached"] is False


LONG = "x" * 257
BAD_RECOMMEND = [
    ({"user_id": "u10", "k": -1}, "greater than or equal to 1"),
    ({"user_id": "u10", "k": 0}, "greater than or equal to 1"),
    ({"user_id": "u10", "k": 201}, "less than or equal to 200"),
    ({"user_id": "u10", "k": "5"}, "valid integer"),
    ({"user_id": "u10", "k": 2.5}, "valid integer"),
    ({"user_id": "u10", "k": True}, "valid integer"),
    ({"user_id": "u10", "k": None}, "valid integer"),
    ({"user_id": ["u10"]}, "valid string"),
    ({"user_id": 42}, "valid string"),
    ({"user_id": ""}, "at least 1 character"),
    ({"user_id": LONG}, "at most 256 characters"),
    ({"k": 3}, "Field required"),
    ({"user_id": "u10", "exclude_seen": "yes"}, "valid boolean"),
    ({"user_id": "u10", "exclude_seen": 1}, "valid boolean"),
    ({"user_id": "u10", "rerank": "maybe"}, "valid boolean"),
    ({"user_id": "u10", "filters": {"categroy": "games"}}, "Extra inputs are not permitted"),
    ({"user_id": "u10", "filters": {"category": 7}}, "valid string"),
    ({"user_id": "u10", "filters": {"exclude_item_ids": [LONG]}}, "at most 256 characters"),
    ({"user_id": "u10", "filters": {"exclude_item_ids": ["i"] * 501}}, "at most 500 items"),
    ({"user_id": "u10", "filters": "games"}, "should be an object"),
    ({"user_id": "u10", "recent_item_ids": "i1"}, "valid array"),
    ({"user_id": "u10", "recent_item_ids": [1, 2]}, "valid string"),
]


@pytest.mark.parametrize(("body", "message"), BAD_RECOMMEND)
def test_bad_recommend_input_is_a_400_with_a_message(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    r = client.post("/recommend", json=body)
    assert r.status_code == 400, r.text
    assert message in r.text and "error" in r.json()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"u10"', b"", b"\xff\xfe", b'{"user_id": "u1"', b'{"k": NaN}'],
)
def test_malformed_bodies_are_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text


def test_similar(client: TestClient) -> None:
    r = client.post("/similar", json={"item_id": "i0", "k": 3})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    missing = client.post("/similar", json={"item_id": "no-such-item"})
    assert missing.status_code == 404
    assert "unknown item id 'no-such-item'" in missing.json()["error"]
    for body in ({"item_id": "i0", "k": 0}, {"item_id": LONG}, {"k": 3}, {"item_id": 3}):
        assert client.post("/similar", json=body).status_code == 400


def test_model_info(client: TestClient) -> None:
    info = client.get("/model_info").json()
    assert info["ready"] and info["mode"] == "live"
    assert (info["registered_model"], info["version"], info["alias"]) == (
        "recops-recommender",
        "1",
        "champion",
    )
    assert info["model_type"] == "als" and info["n_users"] == 90 and info["n_items"] == 30
    assert info["loaded_at"] and info["score_range"]["min"] <= info["score_range"]["max"]
    assert "data_snapshot" in info and info["popularity_window"].startswith("last 14 days")


def test_stats(client: TestClient) -> None:
    for user in ("u30", "new-1", "u31"):
        recommend(client, user_id=user)
    recommend(client, user_id="u30", k=-1)
    stats = client.get("/stats").json()["recommend"]
    assert stats["requests"] >= 4 and stats["client_errors"] >= 1
    assert 0 < stats["fallback_rate"] < 1 and stats["cache"]["hit_rate"] is not None
    assert (
        stats["latency_ms"]["p50"] > 0 and stats["latency_ms"]["p99"] >= stats["latency_ms"]["p50"]
    )


def test_reload_after_promotion_and_broken_version(
    client: TestClient, registry: FakeSource
) -> None:
    registry.aliases["champion"] = "2"
    report = client.post("/admin/reload").json()
    assert (
        report["champion"]["result"] == "loaded" and report["serving"]["champion"]["version"] == "2"
    )
    assert recommend(client, user_id="u10").json()["model_version"] == "2"
    registry.aliases["champion"] = "3"  # artifacts gone
    report = client.post("/admin/reload").json()
    assert report["champion"]["result"] == "failure" and report["champion"]["kept"] == "2"
    r = recommend(client, user_id="u10")
    assert r.status_code == 200 and r.json()["model_version"] == "2"
    info = client.get("/model_info").json()
    assert info["version"] == "2" and "v3 were deleted" in info["last_error"]["error"]
    assert 'model_reload_total{result="failure"}' in client.get("/metrics").text


def test_canary_split_status_and_end(
    client: TestClient, registry: FakeSource, service: Any
) -> None:
    registry.aliases["challenger"] = "2"
    client.post("/admin/reload")
    status = client.get("/rollout/status").json()
    assert status["canary"]["active"] and status["challenger"]["version"] == "2"
    salt = status["canary"]["share"], "recops-canary"
    users = [f"u{i}" for i in range(5, 90)]
    got = {u: recommend(client, user_id=u, k=2).json() for u in users}
    for user, body in got.items():
        canary = in_canary(user, salt[0], salt[1])
        assert body["model_version"] == ("2" if canary else "1"), user
        assert body["model_alias"] == ("challenger" if canary else "champion")
    share = sum(b["model_version"] == "2" for b in got.values()) / len(users)
    assert 0.3 < share < 0.7
    status = client.get("/rollout/status").json()
    assert status["champion"]["requests"] > 0 and status["challenger"]["requests"] > 0
    assert status["challenger"]["latency_ms"]["p50"] is not None
    del registry.aliases["challenger"]
    client.post("/admin/reload")
    status = client.get("/rollout/status").json()
    assert not status["canary"]["active"] and status["challenger"] is None
    assert {recommend(client, user_id=u).json()["model_version"] for u in users[:20]} == {"1"}


def test_metrics_series(client: TestClient) -> None:
    recommend(client, user_id="u40")
    recommend(client, user_id="brand-new-metrics")
    recommend(client, user_id="u40", k=0)
    text = client.get("/metrics").text
    for series in (
        'recommend_requests_total{source="model",status="200"}',
        'recommend_requests_total{source="fallback",status="200"}',
        'recommend_requests_total{source="none",status="400"}',
        "recommend_latency_seconds_bucket{",
        "recommend_fallback_total",
        'model_reload_total{result="success"}',
        'model_version_info{model_name="recops-recommender",model_type="als",role="champion",'
        'version="1"} 1.0',
        "bentoml_service_request_total",
    ):
        assert series in text, series


def test_not_ready_until_a_champion_exists(client: TestClient) -> None:
    before = client.before_ready  # type: ignore[attr-defined]
    assert before["readyz"] == 503 and before["healthz"] == 200
    status, body = before["recommend"]
    assert status == 503 and "alias 'champion'" in body["error"]
    assert before["model_info"]["ready"] is False
    assert client.get("/readyz").status_code == 200


# -- hostile input and faults (issue 12) ---------------------------------------------------
def metric_value(text: str, series: str) -> float:
    """The value of one series in a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


FAILURES = 'model_reload_total{result="failure"}'


def test_oversized_bodies_are_413_before_parsing(client: TestClient) -> None:
    padding = "x" * 70_000  # over serve.max_body_bytes (64 KB), valid JSON otherwise
    big = client.post("/recommend", json={"user_id": "u10", "pad": padding})
    assert big.status_code == 413 and "larger than 65536 bytes" in big.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        yield b'{"user_id": "u10", "pad": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}'

    streamed = client.post("/recommend", content=chunks())
    assert streamed.status_code == 413
    small = client.post("/recommend", content=iter([b'{"user_id": ', b'"u10", "k": 2}']))
    assert small.status_code == 200 and len(small.json()["items"]) == 2
    assert client.post("/admin/reload", content=b"z" * 70_000).status_code == 413


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_log() -> Iterator[Records]:
    """What the recops request logger and BentoML's request-exception logger emit."""
    handler = Records()
    loggers = [logging.getLogger(n) for n in ("recops.serving.requests", HTTP_APP_LOGGER)]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


HTTP_APP_LOGGER = "bentoml._internal.server.http_app"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"user_id": "u10", "k": 0}, "k: Input should be greater than or equal to 1"),
        (b"{not json", "error"),
        ({"user_id": "u10", "filters": {"categroy": "x"}}, "filters.categroy: Extra inputs"),
    ],
)
def test_a_rejected_request_is_one_log_line(
    client: TestClient, server_log: Records, body: Any, reason: str
) -> None:
    if isinstance(body, bytes):
        r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/recommend", json=body)
    assert r.status_code == 400
    lines = [rec.getMessage() for rec in server_log.records]
    assert len(lines) == 1, lines
    assert lines[0].startswith("rejected POST /recommend 400: ") and reason in lines[0]
    assert not any(rec.exc_info for rec in server_log.records)


def test_readyz_reports_the_details(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] and body["status"] == 200 and body["degraded"] is None
    assert body["serving"]["champion"]["version"] == "1"
    before = client.before_ready["readyz_body"]  # type: ignore[attr-defined]
    assert before["ready"] is False and "alias 'champion'" in before["reason"]


def test_a_slow_reload_is_accepted_at_once_with_a_status_url(
    client: TestClient, registry: FakeSource
) -> None:
    registry.aliases["champion"] = "4"
    registry.delay_s = 3.0
    try:
        started = time.monotonic()
        r = client.post("/admin/reload")
        assert time.monotonic() - started < 2.9
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status_url"] == "/admin/reload/status" and body["state"] == "running"
        status = client.get(body["status_url"]).json()
        assert status["reload"]["state"] == "running" and status["serving"]["champion"]
        assert wait_until(
            lambda: client.get("/admin/reload/status").json()["reload"]["state"] == "done"
        )
        done = client.get("/admin/reload/status").json()
        assert done["reload"]["result"]["champion"]["result"] == "loaded"
        assert done["serving"]["champion"]["version"] == "4"
    finally:
        registry.delay_s = 0.0


def test_an_unreachable_registry_is_reported_and_counted_at_once(
    client: TestClient, registry: FakeSource
) -> None:
    before = metric_value(client.get("/metrics").text, FAILURES)
    registry.down = ConnectionError("Connection refused")
    try:
        started = time.monotonic()
        r = client.post("/admin/reload")
        assert r.status_code == 200 and time.monotonic() - started < 1.0
        assert r.json()["error"].startswith("registry unreachable at memory://user:***@fake")
        assert metric_value(client.get("/metrics").text, FAILURES) == before + 1
        ready = client.get("/readyz")  # the loaded model keeps serving
        assert ready.status_code == 200
        assert "registry unreachable at" in ready.json()["last_error"]["error"]
        assert recommend(client, user_id="u10").status_code == 200
    finally:
        registry.down = None


def test_admin_endpoints_need_the_token_when_one_is_set(
    client: TestClient, service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules["recops_bento_service"]
    monkeypatch.setattr(module, "ACCESS", AdminAccess("127.0.0.1", "s3cret-token"))
    for path in ("/admin/reload", "/cache/clear"):
        assert client.post(path).status_code == 401
        wrong = client.post(path, headers={"Authorization": "Bearer s3cret-tokeN"})
        assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["error"]
        ok = client.post(path, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200, ok.text
    assert client.get("/admin/reload/status").status_code == 401
    assert recommend(client, user_id="u10").status_code == 200  # the rest stays open
    # no token and a non-loopback address: the admin endpoints are off
    monkeypatch.setattr(module, "ACCESS", AdminAccess("0.0.0.0", None))
    off = client.post("/admin/reload")
    assert off.status_code == 403 and "RECOPS_ADMIN_TOKEN is not set" in off.json()["error"]
    assert client.post("/cache/clear").status_code == 403
    assert client.get("/model_info").status_code == 200
