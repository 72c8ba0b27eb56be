"""Evidently's recsys report (HTML) for an evaluation, on a seeded subset of its users.

Evidently computes its recsys metrics with per-user Python loops, so the report covers at
most `users` users (the headline metrics and intervals come from `evaluate`, on all evaluated
users); rows follow Evidently's rank format: each user's top-k with `target` 1 for test items,
then the user's test items that were not recommended, ranked after k.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.evaluation.evaluate import EvaluationResult


def recsys_frames(
    users: np.ndarray,
    recos: np.ndarray,
    relevance: sp.csr_matrix,
    history: sp.csr_matrix,
    features: sp.csr_matrix,
    item_ids: np.ndarray,
    k: int,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(current, train, feature columns) frames in Evidently's recsys layout."""
    dense = features.toarray() if features.shape[1] else np.zeros((features.shape[0], 0))
    columns = [f"feature_{j}" for j in range(dense.shape[1])]
    rows: list[tuple[str, int, int, int]] = []
    for u, user in enumerate(users):
        relevant = set(relevance.indices[relevance.indptr[u] : relevance.indptr[u + 1]].tolist())
        listed = [int(i) for i in recos[u, :k] if i >= 0]
        rows += [(str(user), i, rank + 1, int(i in relevant)) for rank, i in enumerate(listed)]
        missed = sorted(relevant - set(listed))
        rows += [(str(user), i, k + 1 + n, 1) for n, i in enumerate(missed)]
    current = pd.DataFrame(rows, columns=["user_id", "item_idx", "prediction", "target"])
    hist = history.tocoo()
    train = pd.DataFrame(
        {"user_id": users[hist.row].astype(str), "item_idx": hist.col, "prediction": 1, "target": 1}
    )
    frames = []
    for frame in (current, train):
        feats = pd.DataFrame(dense[frame["item_idx"].to_numpy()], columns=columns)
        frame = pd.concat([frame.reset_index(drop=True), feats], axis=1)
        frame.insert(1, "item_id", item_ids[frame.pop("item_idx").to_numpy()].astype(str))
        frames.append(frame)
    return frames[0], frames[1], columns


def report_for(
    result: EvaluationResult,
    split_item_ids: np.ndarray,
    path: Path,
    k: int,
    max_users: int,
    seed: int,
) -> Path | None:
    """The report of an `evaluate` result (None when it kept no top-k lists)."""
    test, recos = result.test, result.recos
    if test is None or recos is None or len(test.users) == 0:
        return None
    return write_recsys_report(
        path,
        test.users,
        recos,
        test.relevance,
        test.history,
        test.features,
        split_item_ids,
        k,
        max_users,
        seed,
    )


def recsys_metrics(k: int, feature_columns: list[str]) -> list[Any]:
    """`RecsysPreset`'s metrics that apply to ranked lists (its ScoreDistribution needs model
    scores, which evaluation does not keep; the bias tables need extra columns)."""
    from evidently import metrics as m

    out: list[Any] = [
        m.PrecisionTopK(k=k),
        m.RecallTopK(k=k),
        m.FBetaTopK(k=k),
        m.MAP(k=k),
        m.NDCG(k=k),
        m.MRR(k=k),
        m.HitRate(k=k),
        m.PopularityBiasMetric(k=k, metric="arp"),
        m.PopularityBiasMetric(k=k, metric="coverage"),
        m.PopularityBiasMetric(k=k, metric="gini"),
        m.Personalization(k=k),
        m.Novelty(k=k),
    ]
    if feature_columns:
        out += [
            m.Diversity(k=k, item_features=feature_columns),
            m.Serendipity(k=k, item_features=feature_columns),
        ]
    return out


def write_recsys_report(
    path: Path,
    users: np.ndarray,
    recos: np.ndarray,
    relevance: sp.csr_matrix,
    history: sp.csr_matrix,
    features: sp.csr_matrix,
    item_ids: np.ndarray,
    k: int,
    max_users: int,
    seed: int,
) -> Path:
    """Evidently's recsys metrics at `k` on up to `max_users` users, saved as HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.core.datasets import Recsys

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(users), size=min(max_users, len(users)), replace=False))
    current, train, columns = recsys_frames(
        users[chosen], recos[chosen], relevance[chosen], history[chosen], features, item_ids, k
    )
    definition = DataDefinition(
        numerical_columns=[*columns, "prediction", "target"],
        categorical_columns=["user_id", "item_id"],
        ranking=[Recsys(recommendations_type="rank")],
    )
    snapshot = Report(recsys_metrics(k, columns)).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        additional_data={
            "current_train_data": Dataset.from_pandas(train, data_definition=definition)
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
