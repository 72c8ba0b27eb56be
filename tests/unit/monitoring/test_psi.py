"""PSI: a hand computation on a small example, and the same numbers as Evidently."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recops.config import compose, to_dict
from recops.monitoring.policy import DriftPolicy
from recops.monitoring.psi import binned_shares, psi
from recops.monitoring.report import compare


def drift_policy(**changes: object) -> DriftPolicy:
    """The policy of the shipped conf/drift, with `changes` to its top-level keys."""
    return DriftPolicy.from_config({**to_dict(compose([]).drift), **changes})


def test_psi_matches_a_hand_computation_on_categories() -> None:
    reference = ["a"] * 5 + ["b"] * 3 + ["c"] * 2  # shares .5 .3 .2
    current = ["a"] * 2 + ["b"] * 3 + ["c"] * 5  # shares .2 .3 .5
    by_hand = (0.5 - 0.2) * math.log(0.5 / 0.2) + 0.0 + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert by_hand == pytest.approx(0.5497, abs=1e-4)
    assert psi(reference, current, numerical=False) == pytest.approx(by_hand, rel=1e-12)


def test_psi_matches_a_hand_computation_with_given_bins_and_an_empty_bin() -> None:
    reference = [1.0, 1.5, 2.5, 2.6, 3.5, 3.6, 3.7, 3.8]  # bins [1,2) [2,3) [3,4]: 2 2 4
    current = [2.1, 2.2, 2.3, 3.1]  # 0 3 1 -> the empty bin becomes 0.0001
    edges = [1.0, 2.0, 3.0, 4.0]
    ref, cur = [0.25, 0.25, 0.5], [0.0001, 0.75, 0.25]
    by_hand = sum((r - c) * math.log(r / c) for r, c in zip(ref, cur, strict=True))
    assert psi(reference, current, bins=edges) == pytest.approx(by_hand, rel=1e-12)


def test_identical_samples_have_zero_psi_and_missing_values_are_ignored() -> None:
    values = np.arange(100, dtype=float)
    assert psi(values, values) == pytest.approx(0.0)
    assert psi(np.append(values, np.nan), values) == pytest.approx(0.0)


def test_evidently_binning_rule_numeric_sturges_or_by_value() -> None:
    rng = np.random.default_rng(0)
    many = rng.normal(size=500)  # > 20 distinct values: Sturges bins over both samples
    ref, cur = binned_shares(many, many + 1.0)
    edges = np.histogram_bin_edges(np.concatenate([many, many + 1.0]), bins="sturges")
    assert len(ref) == len(cur) == len(edges) - 1
    few = np.tile(np.arange(5.0), 20)  # <= 20 distinct values: binned by value
    ref, cur = binned_shares(few, few)
    assert len(ref) == 5


def test_our_psi_equals_evidentlys_numbers() -> None:
    rng = np.random.default_rng(1)
    reference = {
        "price": rng.lognormal(3.0, 1.0, 800),
        "event_type": rng.choice(["view", "cart", "purchase"], 900, p=[0.8, 0.15, 0.05]),
    }
    current = {
        "price": rng.lognormal(3.3, 1.1, 600),
        "event_type": rng.choice(["view", "cart", "purchase"], 700, p=[0.6, 0.3, 0.1]),
    }
    _, results = compare(reference, current, drift_policy(min_samples=10))
    for name, numerical in (("price", True), ("event_type", False)):
        ours = psi(reference[name], current[name], numerical=numerical)
        assert results[name].psi == pytest.approx(ours, rel=1e-9), name
        assert results[name].drifted == (ours >= 0.2)


def test_psi_needs_values_on_both_sides() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        psi(pd.Series([np.nan]), [1.0])


def test_another_stattest_per_feature_keeps_psi_for_the_bands() -> None:
    rng = np.random.default_rng(2)
    reference = {"price": rng.normal(10, 2, 500), "event_type": rng.choice(["a", "b"], 500)}
    current = {"price": rng.normal(13, 2, 400), "event_type": rng.choice(["a", "b"], 400)}
    policy = drift_policy(
        features={"price": {"method": "wasserstein", "threshold": 0.1}}, min_samples=10
    )
    _, results = compare(reference, current, policy)
    price = results["price"]
    assert price.method == "wasserstein" and price.drifted
    assert price.psi == pytest.approx(psi(reference["price"], current["price"]))
    assert price.score != pytest.approx(price.psi)
    assert price.band == policy.band(price.psi, True) != "ok"
    assert results["event_type"].method == "psi" and not results["event_type"].drifted
