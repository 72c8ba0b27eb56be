"""Loading, atomic swaps, failed loads, canary lifecycle and rollback (in-memory registry)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from recops.serving import status
from recops.serving.lastgood import LastGoodStore
from recops.serving.loader import ModelLoader
from recops.serving.metrics import ServingMetrics
from recops.serving.runtime import ServingRuntime

from .conftest import FakeSource, make_cfg, shipped_part


def runtime(source: FakeSource, **changes: object) -> ServingRuntime:
    return ServingRuntime(make_cfg(**changes), source)


def test_first_refresh_loads_the_champion(source: FakeSource) -> None:
    rt = runtime(source)
    assert not rt.ready
    report = rt.loader.refresh()
    assert rt.ready and report["champion"]["result"] == "loaded" and report["changed"]
    assert rt.loader.refresh()["champion"]["result"] == "unchanged"
    assert source.loads == ["1"]


def test_promotion_swaps_and_rollback_reuses_the_previous_model(source: FakeSource) -> None:
    rt = runtime(source)
    rt.loader.refresh()
    first = rt.loader.slots.champion
    source.aliases["champion"] = "2"
    report = rt.loader.refresh()
    assert report["champion"]["result"] == "loaded" and rt.loader.slots.champion.ref.version == "2"
    source.aliases["champion"] = "1"  # rollback
    report = rt.loader.refresh()
    assert report["champion"]["result"] == "reused" and rt.loader.slots.champion is first
    assert source.loads == ["1", "2"]


def test_a_broken_version_keeps_the_old_model(source: FakeSource) -> None:
    rt = runtime(source)
    rt.loader.refresh()
    source.aliases["champion"] = "3"
    report = rt.loader.refresh()
    assert report["champion"]["result"] == "failure" and report["champion"]["kept"] == "1"
    assert rt.loader.slots.champion.ref.version == "1"
    assert "artifacts of v3 were deleted" in rt.loader.last_error["error"]
    assert rt.loader.refresh()["champion"]["result"] == "skipped"  # the poll does not retry
    assert rt.loader.refresh(force=True)["champion"]["result"] == "failure"  # reload does
    assert rt.stats.snapshot()["reloads"] == {"success": 1, "failure": 2}


def test_no_champion_means_not_ready(source: FakeSource) -> None:
    source.aliases.clear()
    rt = runtime(source)
    rt.loader.refresh()
    assert not rt.ready and "alias 'champion'" in rt.loader.not_ready_reason()


def test_canary_starts_and_ends_with_the_challenger_alias(source: FakeSource) -> None:
    rt = runtime(source, canary=shipped_part("canary", share=0.5))
    rt.loader.refresh()
    source.aliases["challenger"] = "2"
    rt.loader.refresh()
    challenger = rt.loader.slots.challenger
    assert challenger is not None and challenger.ref.version == "2"
    # promoted: the challenger becomes champion (reused, not reloaded) and the canary ends
    source.aliases["champion"] = "2"
    report = rt.loader.refresh()
    assert rt.loader.slots.champion is challenger and rt.loader.slots.challenger is None
    assert report["challenger"]["result"] == "ended"
    # a new challenger, then its alias disappears
    source.aliases["challenger"] = "1"
    rt.loader.refresh()
    assert rt.loader.slots.challenger is not None
    del source.aliases["challenger"]
    rt.loader.refresh()
    assert rt.loader.slots.challenger is None
    assert source.loads == ["1", "2"]


def test_no_canary_when_disabled(source: FakeSource) -> None:
    source.aliases["challenger"] = "2"
    rt = runtime(source, canary=shipped_part("canary", share=0.0))
    rt.loader.refresh()
    assert rt.loader.slots.challenger is None and source.loads == ["1"]


def test_registry_errors_keep_serving(source: FakeSource) -> None:
    rt = runtime(source)
    rt.loader.refresh()

    def down(alias: str) -> None:
        raise ConnectionError("registry down")

    source.resolve = down  # type: ignore[method-assign]
    report = rt.loader.refresh()
    assert "registry down" in report["error"] and rt.ready


def test_background_thread_polls_and_syncs_commands(source: FakeSource) -> None:
    from .conftest import wait_until

    rt = runtime(source, poll_interval_s=0.1)
    rt.start()
    try:
        assert wait_until(lambda: rt.ready)
        source.aliases["champion"] = "2"  # picked up by the poll, no reload call
        assert wait_until(lambda: rt.loader.slots.champion.ref.version == "2")
        rt.engine.recommend(rt.engine.query("u10", 3))
        assert len(rt.loader.slots.champion.cache) > 0
        rt.board.bump("cache_clear")  # as if another worker was asked to clear
        assert wait_until(lambda: len(rt.loader.slots.champion.cache) == 0)
    finally:
        rt.stop()
    assert isinstance(rt.loader, ModelLoader)


# -- a broken champion on start-up (issue 12.7) --------------------------------------------
def degraded_runtime(source: FakeSource, folder: Path) -> ServingRuntime:
    metrics = ServingMetrics(registry=CollectorRegistry())
    return ServingRuntime(make_cfg(), source, metrics=metrics, last_good=LastGoodStore(folder))


def gauge(rt: ServingRuntime) -> float:
    assert rt.metrics is not None
    return float(rt.metrics.degraded._value.get())


def test_a_broken_champion_at_start_serves_the_previous_champion(
    source: FakeSource, tmp_path: Path
) -> None:
    source.history = ["2", "1"]  # v1 was champion last, before v3 (broken) was forced in
    source.aliases["champion"] = "3"
    rt = degraded_runtime(source, tmp_path)
    rt.refresh()
    assert rt.ready and rt.loader.slots.champion.ref.version == "1"
    degraded = rt.loader.degraded
    assert degraded["wanted_version"] == "3" and degraded["serving_version"] == "1"
    assert degraded["serving_from"] == "registry (past champion)"
    assert "champion v3 cannot load" in degraded["reason"]
    assert "v3 were deleted" in degraded["reason"]
    assert gauge(rt) == 1 and rt.stats.snapshot()["reloads"]["failure"] == 1
    info = status.model_info(rt)
    assert info["degraded"] == degraded and info["version"] == "1"
    assert status.readiness(rt)["degraded"] == degraded
    # the poll does not retry the broken version; once the alias moves on, all is well
    assert rt.refresh()["champion"]["result"] == "skipped" and rt.loader.degraded
    source.aliases["champion"] = "2"
    rt.refresh()
    assert rt.loader.slots.champion.ref.version == "2" and rt.loader.degraded is None
    assert gauge(rt) == 0


def test_without_history_a_restart_serves_the_local_last_good_copy(
    source: FakeSource, tmp_path: Path
) -> None:
    first = degraded_runtime(source, tmp_path)
    first.refresh()  # v1 loads: the copy is kept
    assert LastGoodStore(tmp_path).current().version == "1"
    source.aliases["champion"] = "3"
    restarted = degraded_runtime(source, tmp_path)
    restarted.refresh()
    served = restarted.loader.slots.champion
    assert served.ref.version == "1" and served.ref.source == "last-good copy"
    answer = restarted.engine.recommend(restarted.engine.query("u10", 3))
    assert answer.model_version == "1" and answer.answer.source == "model"
    assert restarted.loader.degraded["serving_from"] == "last-good copy"
    assert gauge(restarted) == 1


def test_a_dead_registry_at_start_serves_the_copy_and_says_where(
    source: FakeSource, tmp_path: Path
) -> None:
    degraded_runtime(source, tmp_path).refresh()
    source.down = ConnectionError("Connection refused")
    restarted = degraded_runtime(source, tmp_path)
    restarted.refresh()
    assert restarted.ready and restarted.loader.slots.champion.ref.version == "1"
    reason = restarted.loader.degraded["reason"]
    assert reason.startswith("registry unreachable at memory://user:***@fake-registry")
    # the registry is back and v1 is still the champion: the copy is the champion
    source.down = None
    restarted.refresh()
    assert restarted.loader.degraded is None and gauge(restarted) == 0


def test_a_dead_registry_and_no_copy_is_not_ready_saying_why(
    source: FakeSource, tmp_path: Path
) -> None:
    source.down = ConnectionError("Connection refused")
    rt = degraded_runtime(source, tmp_path / "empty")
    rt.refresh()
    assert not rt.ready
    assert rt.loader.not_ready_reason().startswith(
        "registry unreachable at memory://user:***@fake-registry: ConnectionError"
    )
    assert rt.stats.snapshot()["reloads"] == {"failure": 1}


def test_a_broken_promotion_while_running_is_reported_degraded(source: FakeSource) -> None:
    rt = runtime(source)
    rt.refresh()
    source.aliases["champion"] = "3"
    rt.refresh()
    assert rt.loader.slots.champion.ref.version == "1"
    assert rt.loader.degraded["wanted_version"] == "3"
