"""The metric gate's policies (margin | significant | non_inferior) and the cross-dataset
guard, on evaluations with per-user values as the gate gets them from the holdout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from recops.config import compose
from recops.errors import ConfigError
from recops.evaluation.evaluate import EvaluationResult, UserMetrics
from recops.registry.gates import GateContext, metric_gate
from recops.registry.settings import RegistrySettings

SETTINGS = replace(
    RegistrySettings.from_config(compose([])),  # the shipped conf/registry, then:
    model_name="m", metric="ndcg_at_10", margin=0.01, margin_mode="absolute",
    audit_log=Path("audit.jsonl"),
)  # fmt: skip
N = 400
USERS = np.array([f"u{i:04d}" for i in range(N)], dtype=object)


def evaluation(values: np.ndarray, overlap: float = 1.0) -> EvaluationResult:
    per_user = UserMetrics(USERS, np.zeros(N, dtype=np.int8), np.ones(N), {"ndcg_at_10": values})
    return EvaluationResult(
        "als",
        {"warm": {"ndcg_at_10": float(values.mean())}},
        per_user=per_user,
        sample={"overlap": {"users": overlap, "items": max(overlap, 0.9)}},
    )


def context(cand: EvaluationResult, champ: EvaluationResult, **settings: Any) -> GateContext:
    ctx = GateContext(
        client=None,  # type: ignore[arg-type]
        settings=replace(SETTINGS, **settings),
        cfg=OmegaConf.create({"seed": 3}),
        root=Path("."),
        version="3",
        alias="champion",
        aliases={"champion": "2"},
        holdout=object(),  # type: ignore[arg-type]
        holdout_label="the test holdout",
    )
    ctx._evaluations.update({"3": cand, "2": champ})
    return ctx


def worlds(shift: float, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champion = rng.beta(0.5, 3.0, size=N)
    noise_draw = rng.normal(0, noise, size=N)
    candidate = champion + shift + noise_draw - noise_draw.mean()  # mean difference = shift
    return candidate, champion


def test_significant_policy_accepts_a_real_gain_and_refuses_noise() -> None:
    cand, champ = worlds(0.03)
    gate = metric_gate(context(evaluation(cand), evaluation(champ), decision="significant"))
    assert gate.passed and gate.detail.startswith("policy significant:")
    assert "significantly better (p < alpha 0.05)" in gate.detail
    cand, champ = worlds(0.0, seed=1)
    cand = cand + 0.002  # beats the point estimate by a hair...
    ctx = context(evaluation(cand), evaluation(champ), decision="significant")
    gate = metric_gate(ctx)
    assert not gate.passed and "policy significant" in gate.detail  # ...but not significantly
    assert "not significantly better" in gate.detail and "Wilcoxon p=" in gate.detail
    assert ctx.comparison is not None and ctx.comparison.paired is not None


def test_margin_policy_is_todays_point_estimate_rule() -> None:
    cand, champ = worlds(0.0, seed=1)
    gate = metric_gate(context(evaluation(cand + 0.02), evaluation(champ)))
    assert gate.passed and "beats champion v2" in gate.detail
    gate = metric_gate(context(evaluation(cand), evaluation(champ + 0.02)))
    assert not gate.passed and "policy margin" in gate.detail


def test_non_inferior_policy_accepts_equal_and_refuses_clearly_worse() -> None:
    cand, champ = worlds(0.0, seed=2)
    ok = metric_gate(
        context(evaluation(cand), evaluation(champ), decision="non_inferior", margin=0.02)
    )
    assert (
        ok.passed and ok.detail.startswith("policy non_inferior:") and "non-inferior" in ok.detail
    )
    worse, champ = worlds(-0.05, seed=2)
    bad = metric_gate(
        context(evaluation(worse), evaluation(champ), decision="non_inferior", margin=0.02)
    )
    assert not bad.passed and "policy non_inferior" in bad.detail
    assert "may be worse by more than the absolute margin 0.02" in bad.detail


def test_champion_of_another_dataset_is_refused_naming_the_overlap() -> None:
    """Issue 12.20: a champion that knows none of the holdout's users scored 0.0000 and was
    replaced; now the gate refuses under every policy."""
    cand, _ = worlds(0.0)
    zero = np.zeros(N)
    for decision in ("margin", "significant", "non_inferior"):
        ctx = context(evaluation(cand), evaluation(zero, overlap=0.0), decision=decision)
        gate = metric_gate(ctx)
        assert not gate.passed
        assert "champion v2 (dataset 'unknown') knows only 0% of its users" in gate.detail
        assert "candidate dataset 'unknown'" in gate.detail and "min_overlap" in gate.detail
    partial = context(evaluation(cand), evaluation(cand - 0.05, overlap=0.7))
    assert metric_gate(partial).passed  # 70% shared users: comparable (default 50%)


def test_bad_decision_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"registry\.decision must be one of margin"):
        replace(SETTINGS, decision="vibes").validate()
    with pytest.raises(ConfigError, match=r"registry\.alpha must be in \(0, 1\)"):
        replace(SETTINGS, alpha=1.5).validate()
