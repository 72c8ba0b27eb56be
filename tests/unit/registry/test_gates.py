"""Gates that need no registry: stage, metric, segments, coverage, smoke checks.

Evaluations are pre-filled in the context's cache, as if the models had been loaded and
evaluated on the holdout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from omegaconf import OmegaConf

from recops.config import compose
from recops.evaluation.evaluate import EvaluationResult
from recops.registry.gates import (
    GateContext,
    _smoke_problems,
    coverage_gate,
    metric_gate,
    run_gates,
    segments_gate,
    stage_gate,
)
from recops.registry.settings import RegistrySettings

SETTINGS = replace(
    RegistrySettings.from_config(compose([])),  # the shipped conf/registry, then:
    model_name="m", metric="ndcg_at_10", margin=0.01, margin_mode="absolute",
    audit_log=Path("audit.jsonl"),
)  # fmt: skip


def result(warm: float, light: float, cold: float | None = None, cov: float = 0.5) -> Any:
    segments = {
        "warm": {"ndcg_at_10": warm, "coverage_at_10": cov},
        "light": {"ndcg_at_10": light},
    }
    if cold is not None:
        segments["cold"] = {"ndcg_at_10": cold}
    return EvaluationResult("als", segments)


def context(aliases: dict[str, str], evaluations: dict[str, Any], **settings: Any) -> GateContext:
    ctx = GateContext(
        client=None,  # type: ignore[arg-type]
        settings=replace(SETTINGS, **settings),
        cfg=OmegaConf.create({}),
        root=Path("."),
        version="3",
        alias="champion",
        aliases=aliases,
        holdout=object(),  # type: ignore[arg-type]
        holdout_label="the test holdout",
    )
    ctx._evaluations.update(evaluations)
    return ctx


def test_stage_gate_requires_the_challenger_for_champion_only() -> None:
    ctx = context({"challenger": "3"}, {})
    assert stage_gate(ctx).passed
    ctx = context({"challenger": "2"}, {})
    gate = stage_gate(ctx)
    assert not gate.passed and "challenger is v2" in gate.detail
    ctx.alias = "challenger"
    assert stage_gate(ctx).passed


def test_metric_gate_compares_both_on_the_same_holdout() -> None:
    ctx = context({"champion": "2"}, {"3": result(0.30, 0.2), "2": result(0.25, 0.2)})
    gate = metric_gate(ctx)
    assert gate.passed and "the test holdout" in gate.detail
    assert ctx.comparison is not None and ctx.comparison.replaces == "2"
    ctx = context({"champion": "2"}, {"3": result(0.255, 0.2), "2": result(0.25, 0.2)})
    gate = metric_gate(ctx)
    assert not gate.passed and "does not beat" in gate.detail
    assert metric_gate(context({}, {})).passed  # no champion yet


def test_segment_gate_tolerates_small_losses_only() -> None:
    evals = {"3": result(0.3, 0.19, 0.10), "2": result(0.2, 0.20, 0.10)}
    assert segments_gate(context({"champion": "2"}, evals, segment_tolerance=0.02)).passed
    evals = {"3": result(0.3, 0.15, 0.10), "2": result(0.2, 0.20, 0.10)}
    gate = segments_gate(context({"champion": "2"}, evals, segment_tolerance=0.02))
    assert not gate.passed and gate.detail.startswith("light worse than champion v2")
    assert segments_gate(context({}, evals)).passed


def test_coverage_gate_is_optional() -> None:
    evals = {"3": result(0.3, 0.2, cov=0.4)}
    assert "no minimum" in coverage_gate(context({}, evals)).detail
    assert coverage_gate(context({}, evals, min_coverage=0.3)).passed
    gate = coverage_gate(context({}, evals, min_coverage=0.5))
    assert not gate.passed and "coverage_at_10=0.4000 < minimum 0.5" in gate.detail


def test_a_gate_that_raises_fails_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def gone(client: Any, name: str, version: str, dst: Path) -> None:
        raise OSError(f"{name} v{version} artifacts are gone")

    monkeypatch.setattr("recops.registry.gates.fetch_verified", gone)
    loads, smoke = run_gates(["loads", "smoke"], context({"champion": "2"}, {}))
    assert (loads.name, loads.passed, loads.detail) == (
        "loads",
        False,
        "OSError: m v3 artifacts are gone",
    )
    assert not smoke.passed and "gone" in smoke.detail


def frame(user: str = "a", item: str = "i1", score: float = 1.0, rank: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [user], "item_id": [item], "score": [score], "rank": [rank]})


@pytest.mark.parametrize(
    ("out", "problem"),
    [
        (frame(), ""),
        (frame(user="b"), "no recommendations"),
        (frame(rank=2), "ranks"),
        (frame(item="zz"), "unknown item"),
        (frame(score=float("nan")), "non-finite"),
    ],
)
def test_smoke_checks(out: pd.DataFrame, problem: str) -> None:
    problems = _smoke_problems(out, ["a"], {"i1", "i2"})
    assert (problem in problems[0]) if problem else problems == []
