"""The register stage's decision, without a registry: the metric gate's comparison
(`compare_metric`) fed to `decide_from_gates`, as production does (the registry flow is tested
end to end)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recops.pipeline.register import decide_from_gates
from recops.registry.comparison import beats, compare_metric
from recops.registry.promotion import RegistrationOutcome

MARGIN, MODE = 0.01, "absolute"
Score = Callable[[str], tuple[float | None, str | None]]


def decide(o: RegistrationOutcome, champion: str | None, score: Score) -> None:
    """The metric gate's comparison, then the stage's decision from the gate results."""
    gate, seen = compare_metric(
        o.metric, o.version, o.candidate_value, champion, lambda: score(str(champion)),
        MARGIN, MODE,
    )  # fmt: skip
    decide_from_gates(o, [gate], seen)


def outcome(value: float | None = 0.30) -> RegistrationOutcome:
    return RegistrationOutcome("m", "3", "run", True, False, "", "ndcg_at_10", value)


def champion(version: str = "2") -> str:
    return version


def test_first_version_becomes_champion() -> None:
    o = outcome()
    decide(o, None, lambda v: pytest.fail("no champion to score"))
    assert o.promoted and "no champion yet" in o.reason


def test_candidate_must_beat_reevaluated_champion_by_margin() -> None:
    o = outcome(0.30)
    decide(o, champion(), lambda v: (0.295, None))
    assert not o.promoted and "does not beat" in o.reason and o.champion_value == 0.295
    o = outcome(0.30)
    decide(o, champion(), lambda v: (0.28, None))
    assert o.promoted and o.previous_champion == "2" and "0.2800" in o.reason


def test_unloadable_champion_does_not_block_the_candidate() -> None:
    o = outcome()
    decide(o, champion(), lambda v: (None, "champion v2 could not be loaded (OSError: gone)"))
    assert o.promoted and o.previous_champion == "2" and "could not be loaded" in o.reason


def test_already_champion_and_missing_metric() -> None:
    o = outcome()
    decide(o, champion("3"), lambda v: pytest.fail("not re-scored"))
    assert not o.promoted and "already the champion" in o.reason
    o = outcome(None)
    decide(o, champion(), lambda v: (0.2, None))
    assert not o.promoted and "no ndcg_at_10 to compare" in o.reason


def test_relative_margin() -> None:
    assert beats(0.111, 0.100, 0.1, "relative") and not beats(0.110, 0.100, 0.1, "relative")
    assert beats(0.111, 0.100, 0.01, "absolute") and not beats(0.110, 0.100, 0.01, "absolute")
