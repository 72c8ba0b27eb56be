"""Calibration of ALS score intervals (`uncertainty: true` on /recommend).

MovieLens small, every rating an interaction; per user the last 20% (by time) held out. ALS
(the project's default hyperparameters) is fitted on the rest; for every held-out interaction
(preference p = 1) and for as many random pairs the user never touched (p = 0) we ask the
model for its interval at nominal levels 0.5 / 0.9 / 0.95 and count how often p lies inside.
Also: the coverage over every pair the user did not train on (all held-out interactions and
all untouched items, in their real proportion), the mean interval width and the posterior
(epistemic) share of the predictive variance by training-history length (fewer interactions:
wider), and the scores of held-out interactions against the interval's half-width.
Writes reports/benchmarks/uncertainty_calibration.md (and .json).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from .conftest import ML_SMALL, RESULTS

#: MovieLens small (`RECOPS_ML_SMALL` overrides the location next to the project).
ML = Path(os.environ.get("RECOPS_ML_SMALL", str(ML_SMALL)))
LEVELS = (0.5, 0.9, 0.95)
HOLDOUT = 0.2


def split(ratings: pd.DataFrame) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Train matrix (users x items) and the held-out (user, item) pairs."""
    users = ratings["userId"].astype("category").cat.codes.to_numpy()
    items = ratings["movieId"].astype("category").cat.codes.to_numpy()
    frame = pd.DataFrame({"u": users, "i": items, "t": ratings["timestamp"].to_numpy()})
    frame = frame.sort_values(["u", "t"], kind="stable")
    position = frame.groupby("u").cumcount()
    size = frame.groupby("u")["i"].transform("size")
    test = position >= np.ceil(size * (1 - HOLDOUT))
    train = frame[~test]
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    matrix = sp.csr_matrix((np.ones(len(train), np.float32), (train["u"], train["i"])), shape=shape)
    return matrix, frame[test][["u", "i"]]


def fit(matrix: sp.csr_matrix) -> Any:
    from recops.config import compose
    from recops.features.dataset import Dataset
    from recops.features.idmap import IdMap
    from recops.models.als import ALSModel

    params = {k: v for k, v in dict(compose(["model=als"]).model).items() if k != "_target_"}
    model = ALSModel(**{**params, "show_progress": False})
    n_users, n_items = matrix.shape
    dataset = Dataset(
        users=IdMap(np.arange(n_users).astype(str).astype(object), kind="user"),
        items=IdMap(np.arange(n_items).astype(str).astype(object), kind="item"),
        user_items=matrix,
        item_meta=pd.DataFrame({"item_id": np.arange(n_items).astype(str)}),
    )
    return model.fit(dataset)


@pytest.mark.timeout(1800)
@pytest.mark.skipif(not ML.is_dir(), reason=f"MovieLens not found at {ML}")
def test_uncertainty_calibration() -> None:
    ratings = pd.read_csv(ML / "ratings.csv")
    matrix, held = split(ratings)
    model = fit(matrix)
    rng = np.random.default_rng(0)
    inside = {("positive", lv): [] for lv in LEVELS} | {("negative", lv): [] for lv in LEVELS}
    widths: list[tuple[int, float, float]] = []
    # every pair the user did not train on: held-out (p = 1) and untouched (p = 0)
    population = dict.fromkeys(LEVELS, 0)
    n_population = 0
    held_scores: list[np.ndarray] = []
    noise = float(model._posterior_parts()[1])
    all_items = np.arange(matrix.shape[1], dtype=np.int64)
    for user, group in held.groupby("u"):
        u = int(user)
        positives = group["i"].to_numpy(dtype=np.int64)
        touched = set(matrix[u].indices.tolist()) | set(positives.tolist())
        negatives = np.array(
            [i for i in rng.choice(matrix.shape[1], 3 * len(positives)) if i not in touched][
                : len(positives)
            ],
            dtype=np.int64,
        )
        for kind, items, truth in (("positive", positives, 1.0), ("negative", negatives, 0.0)):
            for level in LEVELS:
                low, high = model.score_intervals(u, items, level)
                inside[(kind, level)].extend(((low <= truth) & (truth <= high)).tolist())
        low, high = model.score_intervals(u, positives, 0.9)
        std = model.score_std(u, positives)
        epistemic_share = float(np.mean(1.0 - noise / std**2))
        widths.append((int(matrix[u].nnz), float(np.mean(high - low)), epistemic_share))
        held_scores.append(model.score_items(u, positives))
        untrained = np.setdiff1d(all_items, matrix[u].indices)
        truth_all = np.isin(untrained, positives).astype(np.float64)
        score_all = model.score_items(u, untrained).astype(np.float64)
        std_all = model.score_std(u, untrained)
        for level in LEVELS:
            z = NormalDist().inv_cdf(0.5 + level / 2)
            population[level] += int(np.sum(np.abs(truth_all - score_all) <= z * std_all))
        n_population += len(untrained)
    coverage = {f"{k}@{lv}": float(np.mean(v)) for (k, lv), v in inside.items()}
    history = np.array([h for h, _, _ in widths])
    width = np.array([w for _, w, _ in widths])
    share = np.array([e for _, _, e in widths])
    scores = np.concatenate(held_scores)
    edges = [0, 20, 50, 100, 200, 10**9]
    buckets = []
    for lo, hi in itertools.pairwise(edges):
        sel = (history >= lo) & (history < hi)
        if sel.any():
            buckets.append(
                {
                    "history": f"{lo}-{hi - 1}",
                    "users": int(sel.sum()),
                    "mean_width_90": float(width[sel].mean()),
                    "epistemic_share": float(share[sel].mean()),
                }
            )
    result = {
        "held_out": len(held),
        "users": int(held["u"].nunique()),
        "noise_variance": noise,
        "coverage": coverage,
        "population_pairs": n_population,
        "population_coverage": {str(lv): population[lv] / n_population for lv in LEVELS},
        "held_out_score": {
            "median": float(np.median(scores)),
            "p90": float(np.quantile(scores, 0.9)),
            # the 95% half-width from the 90% widths (same std, other z)
            "half_width_95": float(
                width.mean() / 2 * NormalDist().inv_cdf(0.975) / NormalDist().inv_cdf(0.95)
            ),
        },
        "width_by_history": buckets,
    }
    write_report(result)
    # intervals must widen as history shrinks (the property the service promises)
    assert buckets[0]["mean_width_90"] > buckets[-1]["mean_width_90"]


def write_report(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uncertainty_calibration.json").write_text(json.dumps(result, indent=2))
    cov, pop, held = result["coverage"], result["population_coverage"], result["held_out_score"]
    lines = [
        "# ALS score intervals: calibration on MovieLens small",
        "",
        f"{result['held_out']} held-out interactions of {result['users']} users (last 20% per "
        "user by time); as many random untouched pairs per user as negatives. An interaction "
        "is covered when its preference (1 held-out, 0 untouched) lies inside the interval. "
        f"Noise variance (weighted training residual): {result['noise_variance']:.4f}. "
        f"'Every untrained pair': all {result['population_pairs']} (user, item) pairs not in "
        "training, held-out ones (p = 1) and the rest (p = 0) in their real proportion.",
        "",
        "| nominal level | held-out interactions inside | untouched pairs inside | both "
        "| every untrained pair |",
        "|---|---|---|---|---|",
    ]
    for level in LEVELS:
        pos, neg = cov[f"positive@{level}"], cov[f"negative@{level}"]
        lines.append(
            f"| {level:.0%} | {pos:.1%} | {neg:.1%} | {(pos + neg) / 2:.1%} "
            f"| {pop[str(level)]:.1%} |"
        )
    lines += [
        "",
        "Mean 90% interval width of held-out items by training-history length, and the "
        "posterior (epistemic) share of their predictive variance:",
        "",
        "| history | users | mean width | posterior share of variance |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {b['history']} | {b['users']} | {b['mean_width_90']:.4f} | {b['epistemic_share']:.1%} |"
        for b in result["width_by_history"]
    ]
    lines += [
        "",
        "## What the interval does and does not cover",
        "",
        "The interval is the Gaussian predictive interval of implicit ALS's own model: the "
        "preference p_ui (1 touched, 0 not) = x_u·y_i + noise of variance s²/c_ui, the "
        "user's factors the ridge posterior N(x_u, s² A_u⁻¹) with the item factors held "
        "fixed, s² the confidence-weighted mean squared training residual over all pairs. "
        "Its variance is s² (y_i' A_u⁻¹ y_i + 1).",
        "",
        f"- s² is small ({result['noise_variance']:.4f}) because almost every pair is an "
        "untouched 0 that the model fits closely. Held-out interactions score low (median "
        f"{held['median']:.3f}, 90th percentile {held['p90']:.3f}) while the 95% half-width "
        f"is about {held['half_width_95']:.3f}, so p = 1 is almost never inside: the interval "
        "does not say whether the user will interact with the item.",
        "- Over every untrained pair, in their real proportion (nearly all 0), coverage is "
        f"{pop['0.5']:.1%} / {pop['0.9']:.1%} / {pop['0.95']:.1%} at 50 / 90 / 95%: at or "
        "above nominal only because the zeros, fitted more closely than s² says, dominate; "
        "it is not evidence that the interval is right for any item a user might want.",
        "- The posterior term is a few percent of the variance: the ridge solve of every "
        "user weighs all items (the untouched ones at confidence 1), so even a short history "
        "pins x_u down. Intervals do widen as history shrinks, but by little; the noise term, "
        "the same for every user, dominates. Model error (rank, temporal drift) and the item "
        "factors' own uncertainty are not in the interval.",
    ]
    (RESULTS / "uncertainty_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
