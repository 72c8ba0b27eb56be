"""Evaluate any `Recommender` on a split: warm/light/cold segments, beside the baseline.

Evaluation goes through external ids, so a model trained on other data (the current champion)
is measured on exactly the same holdout as a fresh candidate.

One pass: the (possibly sampled, see `sampling`) test users are scored once, on `threads`
threads, with progress; every ranking metric is kept per user (`UserMetrics`), segments are
weighted means over subsets of those users, every headline metric gets a bootstrap confidence
interval, and the popularity baseline (one ranking for everyone: no users x items pass) is
compared with the model on the same users by paired tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from omegaconf import DictConfig

from recops.columns import Columns
from recops.console import progress
from recops.errors import EvaluationError
from recops.evaluation.beyond import item_features, per_user_beyond, segment_beyond, short_head
from recops.evaluation.metrics import (
    N_USERS_KEY,
    beyond_accuracy_metrics,
    per_user_ranking_metrics,
)
from recops.evaluation.sampling import STRATA, UserSample, sample_users, user_strata
from recops.evaluation.settings import EvalSettings
from recops.evaluation.significance import PairedComparison, paired_comparison
from recops.evaluation.uncertainty import confidence_intervals, weighted_mean
from recops.features.dataset import SplitData
from recops.features.events import sorted_codes
from recops.models.popularity import PopularityModel
from recops.models.recommender import Recommender

log = logging.getLogger(__name__)

#: Segments: `warm` users have training history (the headline metrics), `light` is the subset
#: with little history, `cold` users have none and get the popularity fallback.
SEGMENTS = ("warm", "light", "cold")
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"


@dataclass
class UserMetrics:
    """Per-user ranking metrics of one model on the evaluated users."""

    users: np.ndarray
    strata: np.ndarray
    weights: np.ndarray
    values: dict[str, np.ndarray]

    def aligned(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """Values for `users` (NaN where a user was not evaluated here)."""
        position = pd.Index(self.users).get_indexer(users)
        found = position >= 0
        out = {}
        for key, vec in self.values.items():
            col = np.full(len(users), np.nan)
            col[found] = vec[position[found]]
            out[key] = col
        return out

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({Columns.user: self.users.astype(str)})
        frame["stratum"] = np.asarray(STRATA)[self.strata]
        frame["weight"] = self.weights
        for key, vec in self.values.items():
            frame[key] = vec
        return frame


@dataclass
class EvaluationResult:
    """Metrics of one model (per segment) and of the popularity baseline on the same split."""

    model_type: str
    segments: dict[str, dict[str, float]]
    baseline: dict[str, float] = field(default_factory=dict)
    per_user: UserMetrics | None = None
    baseline_per_user: UserMetrics | None = None
    #: 95% (settings.confidence) bootstrap interval of every headline (warm) metric.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Model vs popularity baseline on the same users, per compared metric.
    vs_baseline: dict[str, PairedComparison] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    #: The evaluated users and the model's top-k (split item indices), for reports.
    test: EvaluationTest | None = None
    recos: np.ndarray | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Headline metrics: the warm segment."""
        return self.segments.get("warm", {})

    def flat(self) -> dict[str, float]:
        """MLflow metric keys: `ndcg_at_10`, `ndcg_at_10_ci_low`, `cold_ndcg_at_10`,
        `baseline_ndcg_at_10`, `vs_baseline_ndcg_at_10_p_wilcoxon`, ..."""
        out = dict(self.metrics)
        for key, (low, high) in self.intervals.items():
            out[f"{key}{CI_LOW}"], out[f"{key}{CI_HIGH}"] = low, high
        for name, values in self.segments.items():
            if name != "warm":
                out.update({f"{name}_{k}": v for k, v in values.items()})
        out.update({f"baseline_{k}": v for k, v in self.baseline.items()})
        for key, cmp in self.vs_baseline.items():
            out[f"vs_baseline_{key}_diff"] = cmp.diff
            out[f"vs_baseline_{key}_p_wilcoxon"] = cmp.p_wilcoxon
            out[f"vs_baseline_{key}_p_bootstrap"] = cmp.p_bootstrap
        if self.sample:
            out["eval_users"] = float(self.sample["n_evaluated"])
            out["eval_test_users"] = float(self.sample["n_test_users"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """`model` holds the headline (warm) metrics; `segments` the other segments."""
        others = {name: values for name, values in self.segments.items() if name != "warm"}
        return {
            "model_type": self.model_type,
            "model": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "segments": others,
            "baseline": self.baseline,
            "vs_baseline": {k: v.to_dict() for k, v in self.vs_baseline.items()},
            "sample": self.sample,
        }


def evaluate(
    recommender: Recommender,
    split: SplitData,
    ks: Sequence[int] = (5, 10, 20),
    chunk_size: int = 2048,
    light_user_max_interactions: int = 5,
    with_baseline: bool = True,
    settings: EvalSettings | None = None,
) -> EvaluationResult:
    """All segments for `recommender`, and the popularity baseline unless asked not to.

    `settings` (sampling, threads, bootstrap) wins over the three loose arguments."""
    s = settings or EvalSettings(
        ks=tuple(int(k) for k in ks),
        chunk_size=chunk_size,
        light_user_max_interactions=light_user_max_interactions,
    )
    test = EvaluationTest.build(split, s)
    model_users = score_users(recommender, split, test, s, recommender.model_type)
    result = EvaluationResult(recommender.model_type, test.segment_metrics(model_users, s))
    result.per_user = model_users.metrics
    result.test, result.recos = test, model_users.recos
    result.sample = {**test.sample.describe(), "overlap": holdout_overlap(recommender, split, test)}
    warm = test.sample.segment_mask("warm")
    headline = {k: v[warm] for k, v in model_users.metrics.values.items()}
    result.intervals = confidence_intervals(
        headline, test.sample.weights[warm], s.bootstrap_samples, s.confidence, s.seed
    )
    if with_baseline:
        popularity = Recommender.from_training(PopularityModel().fit(split.train), split.train)
        base_users = score_users(popularity, split, test, s, "popularity")
        result.baseline = test.segment_metrics(base_users, s).get("warm", {})
        result.baseline_per_user = base_users.metrics
        result.vs_baseline = compare_on_users(model_users.metrics, base_users.metrics, s, mask=warm)
    return result


def evaluate_with_config(
    recommender: Recommender, split: SplitData, cfg: DictConfig, with_baseline: bool = True
) -> EvaluationResult:
    """`evaluate` with the settings of `cfg.eval` (and `cfg.threads`, `cfg.seed`)."""
    return evaluate(
        recommender, split, with_baseline=with_baseline, settings=EvalSettings.from_config(cfg)
    )


def holdout_overlap(
    recommender: Recommender, split: SplitData, test: EvaluationTest
) -> dict[str, float]:
    """Share of the evaluated warm test users, and of the test items, that `recommender` knows:
    near 1 for a model of this data, near 0 for a model of another dataset (whose metrics
    here mean nothing)."""
    users = test.users[test.sample.segment_mask("warm")]
    items = split.train.items.external_ids[np.unique(test.relevance.indices)]
    return {
        "users": float(np.mean(recommender.users.lookup(users) >= 0)) if len(users) else 1.0,
        "items": float(np.mean(recommender.items.lookup(items) >= 0)) if len(items) else 1.0,
    }


def compare_on_users(
    a: UserMetrics, b: UserMetrics, s: EvalSettings, mask: np.ndarray | None = None
) -> dict[str, PairedComparison]:
    """Paired tests of `a` vs `b` on each of `s.compare_metrics`, over `a`'s users (those in
    `mask`) that `b` has too, with `a`'s sample weights."""
    users = a.users if mask is None else a.users[mask]
    weights = a.weights if mask is None else a.weights[mask]
    other = b.aligned(users)
    out = {}
    for key in s.compare_metrics:
        if key not in a.values or key not in other:
            continue
        mine = a.values[key] if mask is None else a.values[key][mask]
        out[key] = paired_comparison(
            key, mine, other[key], weights, s.bootstrap_samples, s.confidence, s.seed
        )
    return out


@dataclass
class ScoredUsers:
    metrics: UserMetrics
    recos: np.ndarray


@dataclass
class EvaluationTest:
    """The evaluated test users (maybe a sample), their relevance rows and strata."""

    users: np.ndarray
    relevance: sp.csr_matrix
    sample: UserSample
    item_popularity: np.ndarray
    n_train_users: int
    #: training rows of the evaluated users (zero rows for cold users), for serendipity
    history: sp.csr_matrix
    features: sp.csr_matrix
    popular_top: np.ndarray
    short_head: np.ndarray

    @classmethod
    def build(cls, split: SplitData, s: EvalSettings) -> EvaluationTest:
        test = split.test
        if test.empty:
            stats = split.stats or {}
            where = f" ({stats.get('split', 'split')})" if isinstance(stats, dict) else ""
            raise EvaluationError(
                f"the split{where} left no test interactions to evaluate on: every user's "
                "held-out items were dropped (unseen in training, or already in the user's "
                "training history) or users have too little history; raise "
                "split.test_fraction (or split.n), or use more data"
            )
        codes, users = sorted_codes(test[Columns.user])
        relevance = _relevance_rows(codes, test, len(users), split.train.n_items)
        user_idx = np.full(len(users), -1, dtype=np.int64)  # every row of a user: one index
        user_idx[codes] = test[Columns.user_idx].to_numpy()
        history = np.diff(split.train.user_items.indptr)
        lengths = np.where(user_idx >= 0, history[np.maximum(user_idx, 0)], -1)
        strata = user_strata(lengths, s.light_user_max_interactions)
        sample = sample_users(strata, s.max_users, s.min_segment_users, s.seed)
        if sample.sampled:
            log.info(
                "evaluating a seeded sample of %d of %d test users (eval.max_users=%d)",
                len(sample.index),
                sample.n_population,
                s.max_users,
            )
        popularity = split.train.item_popularity().astype(np.float64)
        chosen_idx = user_idx[sample.index]
        history = split.train.user_items[np.maximum(chosen_idx, 0)]
        history = sp.csr_matrix(sp.diags((chosen_idx >= 0).astype(np.float64)) @ history)
        return cls(
            users[sample.index],
            relevance[sample.index],
            sample,
            popularity,
            split.train.n_users,
            history,
            item_features(split.train.item_meta, s.diversity_features),
            np.lexsort((np.arange(len(popularity)), -popularity))[: max(s.ks)],
            short_head(popularity, s.long_tail_head),
        )

    def segment_metrics(self, scored: ScoredUsers, s: EvalSettings) -> dict[str, dict[str, float]]:
        out = {}
        for name in SEGMENTS:
            mask = self.sample.segment_mask(name)
            if not mask.any():
                continue
            w = self.sample.weights[mask]
            values = {k: weighted_mean(v[mask], w) for k, v in scored.metrics.values.items()}
            values[N_USERS_KEY] = float(np.count_nonzero(mask))
            values.update(
                beyond_accuracy_metrics(
                    scored.recos[mask], self.item_popularity, self.n_train_users, ks=s.ks
                )
            )
            values.update(
                segment_beyond(scored.recos[mask], self.item_popularity, self.short_head, s.ks)
            )
            out[name] = values
        return out


def score_users(
    recommender: Recommender,
    split: SplitData,
    test: EvaluationTest,
    s: EvalSettings,
    label: str,
) -> ScoredUsers:
    """Top-k for the evaluated users (with progress) and their per-user ranking metrics."""
    with progress(f"scoring {label}", total=len(test.users), unit="users") as bar:
        recos = recommend_in_split_space(
            recommender, split, test.users, max(s.ks), s.threads, bar.advance
        )
    values = per_user_ranking_metrics(recos, test.relevance, ks=s.ks, chunk_size=s.chunk_size)
    values.update(
        per_user_beyond(recos, test.relevance, test.history, test.features, test.popular_top, s.ks)
    )
    metrics = UserMetrics(test.users, test.sample.strata, test.sample.weights, values)
    return ScoredUsers(metrics, recos)


def relevance_matrix(test: pd.DataFrame, n_items: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Unique external user ids of `test` (sorted) and their binary relevance rows."""
    codes, users = sorted_codes(test[Columns.user])
    return users, _relevance_rows(codes, test, len(users), n_items)


def _relevance_rows(
    codes: np.ndarray, test: pd.DataFrame, n_users: int, n_items: int
) -> sp.csr_matrix:
    matrix = sp.csr_matrix(
        (np.ones(len(test), dtype=np.float32), (codes, test[Columns.item_idx].to_numpy())),
        shape=(n_users, n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def recommend_in_split_space(
    recommender: Recommender,
    split: SplitData,
    user_ids: np.ndarray,
    k: int,
    threads: int = 1,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Top-k for external `user_ids`, as item indices of `split` (-1 where the item is unknown)."""
    ids, _ = recommender.recommend_indices(
        list(user_ids), k, on_unknown="popular", threads=threads, on_chunk=on_chunk
    )
    to_split = split.train.items.lookup(recommender.items.external_ids)
    return np.where(ids >= 0, to_split[np.maximum(ids, 0)], -1)
