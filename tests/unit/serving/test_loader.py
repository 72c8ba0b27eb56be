"""Loading, atomic swaps, failed loads, canary lifecycle and rollback (in-memory registry)."""

from __future__ import annotations

from recops.serving.config import CanaryConfig
from recops.serving.loader import ModelLoader
from recops.serving.runtime import ServingRuntime

from .conftest import FakeSource, make_cfg


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
    rt = runtime(source, canary=CanaryConfig(share=0.5))
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
    rt = runtime(source, canary=CanaryConfig(share=0.0))
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
