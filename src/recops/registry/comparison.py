"""The metric comparison behind the promotion gate (shared by the register stage's automatic
promotion and `recops promote`), and the `GateResult` every gate returns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

#: (value, None) or (None, why the champion could not be measured).
ChampionScore = Callable[[], tuple[float | None, str | None]]


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.name}: {'pass' if self.passed else 'FAIL'} — {self.detail}"


@dataclass(frozen=True)
class MetricComparison:
    """What the metric gate measured (the register stage reports it)."""

    candidate_value: float | None
    champion_version: str | None = None
    champion_value: float | None = None
    replaces: str | None = None  # the champion the candidate replaces when it passes


def beats(candidate: float, champion: float, margin: float, mode: str) -> bool:
    threshold = champion * (1 + margin) if mode == "relative" else champion + margin
    return candidate > threshold


def compare_metric(
    metric: str,
    version: str,
    candidate_value: float | None,
    champion: str | None,
    champion_score: ChampionScore,
    margin: float,
    mode: str,
    where: str = "this split",
) -> tuple[GateResult, MetricComparison]:
    """Does `version` beat `champion` on `metric` by `margin`, both measured on `where`?

    No champion: it passes. An unloadable champion must not block a healthy candidate: it
    passes with the reason. A candidate without a finite value does not pass.
    """

    def result(passed: bool, detail: str, **seen: Any) -> tuple[GateResult, MetricComparison]:
        return GateResult("metric", passed, detail), MetricComparison(candidate_value, **seen)

    if champion is None:
        return result(True, "no champion yet: the first version becomes champion")
    if champion == version:
        return result(False, f"v{version} is already the champion", champion_version=champion)
    champ_value, problem = champion_score()
    seen: dict[str, Any] = {"champion_version": champion, "champion_value": champ_value}
    if problem is not None:
        return result(True, f"{problem}; candidate promoted", replaces=champion, **seen)
    cand = candidate_value
    if cand is None or champ_value is None or not math.isfinite(cand):
        return result(False, f"no {metric} to compare: candidate stays candidate", **seen)
    won = beats(cand, champ_value, margin, mode)
    verdict = "beats" if won else "does not beat"
    detail = (
        f"candidate {metric}={cand:.4f} {verdict} champion v{champion} re-evaluated on "
        f"{where} ({champ_value:.4f}) by the {mode} margin {margin}"
    )
    return result(won, detail, replaces=champion if won else None, **seen)
