"""Calibration of ALS score intervals (`uncertainty: true` on /recommend).

MovieLens small, every rating an interaction; per user the last 20% (by time) held out. ALS
(the project's default hyperparameters) is fitted on the rest; for every held-out interaction
(preference p = 1) and for as many random pairs the user never touched (p = 0) we ask the
model for its interval at nominal levels 0.5 / 0.9 / 0.95 and count how often p lies inside.
Also: the mean interval width by training-history length (fewer interactions: wider).
Writes reports/benchmarks/uncertainty_calibration.md (and .json).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
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
    widths: list[tuple[int, float]] = []
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
        widths.append((int(matrix[u].nnz), float(np.mean(high - low))))
    coverage = {f"{k}@{lv}": float(np.mean(v)) for (k, lv), v in inside.items()}
    history = np.array([h for h, _ in widths])
    width = np.array([w for _, w in widths])
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
                }
            )
    result = {
        "held_out": len(held),
        "users": int(held["u"].nunique()),
        "noise_variance": float(model._posterior_parts()[1]),
        "coverage": coverage,
        "width_by_history": buckets,
    }
    write_report(result)
    # intervals must widen as history shrinks (the property the service promises)
    assert buckets[0]["mean_width_90"] > buckets[-1]["mean_width_90"]


def write_report(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uncertainty_calibration.json").write_text(json.dumps(result, indent=2))
    cov = result["coverage"]
    lines = [
        "# ALS score intervals: calibration on MovieLens small",
        "",
        f"{result['held_out']} held-out interactions of {result['users']} users (last 20% per "
        "user by time); as many random untouched pairs per user as negatives. An interaction "
        "is covered when its preference (1 held-out, 0 untouched) lies inside the interval. "
        f"Noise variance (weighted training residual): {result['noise_variance']:.4f}.",
        "",
        "| nominal level | held-out interactions inside | untouched pairs inside | both |",
        "|---|---|---|---|",
    ]
    for level in LEVELS:
        pos, neg = cov[f"positive@{level}"], cov[f"negative@{level}"]
        lines.append(f"| {level:.0%} | {pos:.1%} | {neg:.1%} | {(pos + neg) / 2:.1%} |")
    lines += [
        "",
        "Mean 90% interval width of held-out items by training-history length:",
        "",
        "| history | users | mean width |",
        "|---|---|---|",
    ]
    lines += [
        f"| {b['history']} | {b['users']} | {b['mean_width_90']:.4f} |"
        for b in result["width_by_history"]
    ]
    (RESULTS / "uncertainty_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
