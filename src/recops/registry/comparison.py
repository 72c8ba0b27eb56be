"""The metric comparison behind the promotion gate (shared by the register stage's automatic
promotion and `recops promote`), and the `GateResult` every gate returns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from recops.evaluation.significance import PairedComparison

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
    paired: PairedComparison | None = None  # the paired test, under a paired policy


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
    if not won:
        detail += " (policy margin: point estimates)"
    return result(won, detail, replaces=champion if won else None, **seen)


def overlap_problem(
    overlap: dict[str, float] | None,
    min_overlap: float,
    champion: str,
    champion_dataset: str,
    candidate_dataset: str,
    where: str,
) -> str | None:
    """Why the champion cannot be compared on this holdout (it knows too few of its users or
    items: another dataset), or None."""
    if not overlap:
        return None
    low = {k: v for k, v in overlap.items() if v < min_overlap}
    if not low:
        return None
    shares = ", ".join(f"{v:.0%} of its {k}" for k, v in low.items())
    return (
        f"champion v{champion} (dataset {champion_dataset!r}) knows only {shares} on "
        f"{where} (candidate dataset {candidate_dataset!r}); registry.min_overlap is "
        f"{min_overlap:.0%}: the two cannot be compared, so the candidate is not promoted "
        "(train both on the same data, or promote with --force --reason)"
    )


def paired_decision(
    decision: str,
    paired: PairedComparison,
    champion: str,
    margin: float,
    mode: str,
    alpha: float,
    where: str,
) -> tuple[bool, str]:
    """The `significant` / `non_inferior` policies on a paired comparison candidate (a) vs
    champion (b) over the same users; the detail names the policy and the evidence."""
    p = paired
    measured = (
        f"candidate {p.metric}={p.mean_a:.4f} vs champion v{champion} {p.mean_b:.4f}, both "
        f"on {where} ({p.n_users} users, paired): diff {p.diff:+.4f}, {p.confidence:.0%} CI "
        f"[{p.ci_low:+.4f}, {p.ci_high:+.4f}], Wilcoxon p={p.p_wilcoxon:.3g}, "
        f"d_z={p.effect_size:+.3f}"
    )
    if decision == "significant":
        won = p.diff > 0 and p.p_wilcoxon < alpha
        verdict = (
            f"significantly better (p < alpha {alpha})"
            if won
            else f"not significantly better (needs diff > 0 and p < alpha {alpha})"
        )
        return won, f"policy significant: {measured}: {verdict}"
    allowed = margin * p.mean_b if mode == "relative" else margin
    won = p.ci_low > -allowed
    verdict = (
        f"non-inferior (CI lower bound {p.ci_low:+.4f} > -{allowed:.4f})"
        if won
        else f"may be worse by more than the {mode} margin {margin} "
        f"(CI lower bound {p.ci_low:+.4f} <= -{allowed:.4f})"
    )
    return won, f"policy non_inferior: {measured}: {verdict}"
