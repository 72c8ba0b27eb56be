"""One-pass evaluation: same numbers as the per-segment means, sampling that is seeded and
stratified, confidence intervals, the baseline, and clear errors for bad settings/splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recops.columns import Columns
from recops.errors import ConfigError, EvaluationError
from recops.evaluation.evaluate import (
    evaluate,
    recommend_in_split_space,
    relevance_matrix,
)
from recops.evaluation.metrics import beyond_accuracy_metrics, ranking_metrics
from recops.evaluation.settings import EvalSettings
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender

KS = (5, 10, 20)


def reference_segment(rec: Recommender, split: SplitData, frame: pd.DataFrame) -> dict[str, float]:
    """The plain definition: score the segment's users, mean over them."""
    users, relevance = relevance_matrix(frame, split.train.n_items)
    recos = recommend_in_split_space(rec, split, users, max(KS))
    out = ranking_metrics(recos, relevance, ks=KS)
    out.update(
        beyond_accuracy_metrics(recos, split.train.item_popularity(), split.train.n_users, KS)
    )
    return out


def test_full_evaluation_equals_the_per_segment_definition(
    world_split: SplitData, ease: Recommender
) -> None:
    result = evaluate(ease, world_split, ks=KS, light_user_max_interactions=5)
    test = world_split.test
    warm = test[test[Columns.user_idx] >= 0]
    history = np.diff(world_split.train.user_items.indptr)
    light = warm[history[warm[Columns.user_idx].to_numpy()] <= 5]
    assert not light.empty
    for name, frame in (("warm", warm), ("light", light)):
        expected = reference_segment(ease, world_split, frame)
        got = {key: result.segments[name][key] for key in expected}
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.sample["sampled"] is False
    low, high = result.intervals["ndcg_at_10"]
    assert low < result.metrics["ndcg_at_10"] < high
    assert result.baseline["ndcg_at_10"] == pytest.approx(
        reference_segment(popularity(world_split), world_split, warm)["ndcg_at_10"]
    )
    paired = result.vs_baseline["ndcg_at_10"]
    assert paired.diff == pytest.approx(
        result.metrics["ndcg_at_10"] - result.baseline["ndcg_at_10"]
    )
    flat = result.flat()
    assert flat["ndcg_at_10_ci_low"] == low and flat["ndcg_at_10_ci_high"] == high
    assert "vs_baseline_ndcg_at_10_p_wilcoxon" in flat


def popularity(split: SplitData) -> Recommender:
    from recops.models.popularity import PopularityModel

    return Recommender.from_training(PopularityModel().fit(split.train), split.train)


def test_threads_do_not_change_the_result(world_split: SplitData, ease: Recommender) -> None:
    one = evaluate(ease, world_split, settings=EvalSettings(threads=1))
    two = evaluate(ease, world_split, settings=EvalSettings(threads=2))
    assert one.flat() == two.flat()


def test_sample_is_deterministic_stratified_and_its_ci_holds_the_full_value(
    world_split: SplitData, ease: Recommender
) -> None:
    full = evaluate(ease, world_split, with_baseline=False)
    n_users = full.sample["n_test_users"]
    settings = EvalSettings(max_users=n_users // 3, min_segment_users=20, seed=7)
    first = evaluate(ease, world_split, with_baseline=False, settings=settings)
    again = evaluate(ease, world_split, with_baseline=False, settings=settings)
    other = evaluate(
        ease, world_split, with_baseline=False, settings=dataclasses.replace(settings, seed=8)
    )
    assert first.sample["sampled"] and first.sample["n_evaluated"] < n_users
    assert first.flat() == again.flat()
    assert first.per_user is not None and again.per_user is not None and other.per_user
    np.testing.assert_array_equal(first.per_user.users, again.per_user.users)
    assert set(first.per_user.users) != set(other.per_user.users)
    population, evaluated = first.sample["population"], first.sample["evaluated"]
    for stratum, count in population.items():  # every stratum represented
        assert evaluated[stratum] >= min(count, 20)
    for key in ("ndcg_at_10", "recall_at_10", "precision_at_10", "hit_rate_at_10"):
        low, high = first.intervals[key]
        assert low <= full.metrics[key] <= high, key
    full_width = np.subtract(*reversed(full.intervals["ndcg_at_10"]))
    sample_width = np.subtract(*reversed(first.intervals["ndcg_at_10"]))
    assert sample_width > full_width  # fewer users: a wider interval


def test_empty_holdout_is_a_clear_error(world_split: SplitData, ease: Recommender) -> None:
    empty = SplitData(world_split.train, world_split.test.iloc[:0], world_split.stats)
    with pytest.raises(EvaluationError, match=r"no test interactions.*split\.test_fraction"):
        evaluate(ease, empty)


def test_only_cold_users_has_no_warm_headline_but_no_key_error(
    world_split: SplitData, ease: Recommender
) -> None:
    test = world_split.test.assign(**{Columns.user_idx: -1})
    result = evaluate(ease, SplitData(world_split.train, test, world_split.stats))
    assert result.metrics == {} and "cold" in result.segments
    assert result.baseline == {}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-5, "-5"), ("many", "'many'"), (2.5, "2.5"), (True, "True")],
)
def test_bad_max_users_names_the_key(value: object, shown: str) -> None:
    from recops.config import compose

    cfg = compose([])
    cfg.eval.max_users = value
    with pytest.raises(ConfigError, match=rf"^eval\.max_users must be .*got {shown}$"):
        EvalSettings.from_config(cfg)


def test_settings_from_the_shipped_config() -> None:
    from recops.config import compose

    settings = EvalSettings.from_config(compose())
    assert settings.max_users == 50000 and settings.threads == 2
    assert EvalSettings.from_config(compose(["eval.max_users=null"])).max_users is None
