"""Champion history and alias-state bookkeeping (pure functions)."""

from __future__ import annotations

from recops.registry.history import (
    AliasChange,
    after_champion_moved,
    alias_changes,
    pushed,
    recent_champions,
    rollback_target,
)


def test_promotion_pushes_the_replaced_champion_once() -> None:
    assert pushed([], "1") == ["1"]
    assert pushed(["1"], "2") == ["1", "2"]
    assert pushed(["1", "2"], "2") == ["1", "2"]
    assert pushed(["1"], None) == ["1"]


def test_out_of_band_move_back_is_a_rollback_else_a_promotion() -> None:
    assert after_champion_moved(["1", "2"], "3", "2") == ["1"]  # back to the last one: pop
    assert after_champion_moved(["1"], "2", "5") == ["1", "2"]  # elsewhere: push
    assert after_champion_moved(["1"], "2", None) == ["1", "2"]  # alias deleted
    assert after_champion_moved(["1"], None, "4") == ["1"]  # first champion set


def test_rollback_walks_back_skipping_current_and_unusable_versions() -> None:
    usable = {"1", "3"}.__contains__
    assert rollback_target(["1", "2", "3"], "4", usable) == ("3", ["1", "2"], [])
    assert rollback_target(["1", "2"], "3", usable) == ("1", [], ["2"])
    assert rollback_target(["1", "4"], "4", usable) == ("1", [], [])
    assert rollback_target(["2"], "3", usable) == (None, [], ["2"])
    assert rollback_target([], "3", usable) == (None, [], [])


def test_recent_champions_are_distinct_most_recent_first() -> None:
    assert recent_champions(["1", "2", "1", "3"], 2) == ["3", "1"]
    assert recent_champions(["1", "2"], 5) == ["2", "1"]
    assert recent_champions(["1"], 0) == []


def test_alias_changes() -> None:
    known = {"champion": "1", "candidate": "2"}
    now = {"champion": "2", "challenger": "3"}
    assert alias_changes(known, now) == [
        AliasChange("candidate", "2", None),
        AliasChange("challenger", None, "3"),
        AliasChange("champion", "1", "2"),
    ]
    assert alias_changes(now, dict(now)) == []
