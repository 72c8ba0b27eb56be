"""Request routing: readiness, canary arms, challenger failures, cache, limits."""

from __future__ import annotations

import json

import pytest

from recops.serving.canary import in_canary
from recops.serving.errors import BadRequestError, NotReadyError
from recops.serving.runtime import ServingRuntime
from recops.serving.schemas import RecommendResponse

from .conftest import FakeSource, make_cfg, shipped_part


def ready_runtime(source: FakeSource, **changes: object) -> ServingRuntime:
    rt = ServingRuntime(make_cfg(**changes), source)
    rt.loader.refresh()
    return rt


def test_not_ready_before_the_first_load(source: FakeSource) -> None:
    rt = ServingRuntime(make_cfg(), source)
    with pytest.raises(NotReadyError, match="no model loaded yet"):
        rt.engine.recommend(rt.engine.query("u10", 3))


def test_answer_and_cache_hit(source: FakeSource) -> None:
    rt = ready_runtime(source)
    note: dict[str, object] = {}
    q = rt.engine.query("u10", 3, category="books")
    first = rt.engine.recommend(q, note).to_dict()
    assert note["source"] == "model" and note["version"] == "1" and not note["cached"]
    second = rt.engine.recommend(q, note).to_dict()
    assert second["cached"] and second["items"] == first["items"]
    assert first["model_version"] == "1" and first["model_alias"] == "champion"


def test_limits_are_checked(source: FakeSource) -> None:
    rt = ready_runtime(source)
    with pytest.raises(BadRequestError, match="k must be between 1 and 200"):
        rt.engine.query("u10", 201)
    with pytest.raises(BadRequestError, match="user_id must have"):
        rt.engine.query("x" * 257, 3)
    with pytest.raises(BadRequestError):
        rt.engine.similar("i0", 0)


def test_rerank_switch(source: FakeSource) -> None:
    rt = ready_runtime(source)
    assert rt.engine.query("u10", rerank=True).rerank
    assert not rt.engine.query("u10").rerank
    off = ready_runtime(source, rerank=shipped_part("rerank", enabled=False))
    assert not off.engine.query("u10", rerank=True).rerank


def test_canary_routes_the_hashed_share(source: FakeSource) -> None:
    source.aliases["challenger"] = "2"
    rt = ready_runtime(source, canary=shipped_part("canary", share=0.5, salt="s"))
    users = [f"u{i}" for i in range(5, 90)]
    versions = {u: rt.engine.recommend(rt.engine.query(u, 3)).model_version for u in users}
    for user, version in versions.items():
        assert version == ("2" if in_canary(user, 0.5, "s") else "1")
        assert rt.engine.recommend(rt.engine.query(user, 3)).model_version == version  # sticky
    assert 0.3 < sum(v == "2" for v in versions.values()) / len(users) < 0.7


def test_a_failing_challenger_falls_back_to_the_champion(source: FakeSource) -> None:
    source.aliases["challenger"] = "2"
    rt = ready_runtime(source, canary=shipped_part("canary", share=1.0))

    def broken(q: object) -> object:
        raise RuntimeError("challenger bug")

    rt.loader.slots.challenger.answer = broken  # type: ignore[method-assign, union-attr]
    note: dict[str, object] = {}
    out = rt.engine.recommend(rt.engine.query("u10", 3), note)
    assert out.model_version == "1" and note["challenger_failed"] == "2"


def test_json_answer_matches_the_response_model(source: FakeSource) -> None:
    rt = ready_runtime(source)
    for query in (
        rt.engine.query("u10", 5),
        rt.engine.query("u10", 5, rerank=True),
        rt.engine.query('a "quoted" \\ new user', 4, recent_item_ids=["i1"]),
        rt.engine.query("u11", 3, category="no-such-category"),
    ):
        answer = rt.engine.recommend(query)
        parsed = RecommendResponse.model_validate_json(answer.to_json())
        assert (
            parsed.model_dump() == RecommendResponse.model_validate(answer.to_dict()).model_dump()
        )
        assert json.loads(answer.to_json()) == answer.to_dict()
