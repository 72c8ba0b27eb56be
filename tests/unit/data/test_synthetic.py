"""Tests of the synthetic e-commerce world generator (small worlds, each well under a second)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recops.columns import Columns
from recops.data.sources.base import RawData, Source
from recops.data.sources.synthetic import SyntheticSource
from recops.errors import ConfigError

SMALL = {"n_users": 300, "n_items": 100, "n_events": 10_000, "n_categories": 10, "n_brands": 12}
SHIFT = {"new_item_share": 0.25, "taste_mix": 0.6, "weeks": 2}


@pytest.fixture(scope="module")
def small() -> RawData:
    return SyntheticSource(**SMALL).load()


@pytest.fixture(scope="module")
def shifted() -> RawData:
    return SyntheticSource(**SMALL, shift=SHIFT).load()


def with_category(raw: RawData) -> pd.DataFrame:
    assert raw.items is not None
    return raw.events.merge(raw.items[[Columns.item, Columns.category]], on=Columns.item)


def test_same_parameters_give_identical_data(small: RawData) -> None:
    again = SyntheticSource(**SMALL).load()
    pd.testing.assert_frame_equal(small.events, again.events)
    assert small.items is not None and again.items is not None
    pd.testing.assert_frame_equal(small.items, again.items)
    assert (small.origin, small.content_hash) == (again.origin, again.content_hash)


def test_other_seed_gives_other_data(small: RawData) -> None:
    other = SyntheticSource(**SMALL, seed=7).load()
    assert not small.events.equals(other.events)
    assert other.content_hash != small.content_hash
    assert "seed=7" in other.origin


def test_yaml_style_values_are_normalised() -> None:
    plain = SyntheticSource(**SMALL, shift={"taste_mix": 0.5})
    yaml_like = SyntheticSource(**{**SMALL, "n_events": 1e4}, popularity_exponent=1, shift=SHIFT)
    assert yaml_like.n_events == 10_000 and isinstance(yaml_like.popularity_exponent, float)
    assert plain.shift == {"new_item_share": 0.2, "taste_mix": 0.5, "weeks": 2}
    same = SyntheticSource(**SMALL, shift=SHIFT)
    assert yaml_like.load().content_hash == same.load().content_hash


def test_is_a_source() -> None:
    source: Source = SyntheticSource(**SMALL)
    assert source.name == "synthetic"


def test_event_schema(small: RawData) -> None:
    events = small.events
    assert list(events.columns) == [
        Columns.user,
        Columns.item,
        Columns.timestamp,
        Columns.event_type,
        Columns.value,
        Columns.weight,
        Columns.source_row,
    ]
    assert events[Columns.user].map(type).eq(str).all()
    assert events[Columns.item].map(type).eq(str).all()
    assert events[Columns.user].str.fullmatch(r"u\d{5}").all()
    assert events[Columns.item].str.fullmatch(r"i\d{5}").all()
    assert events[Columns.timestamp].dtype == np.dtype("datetime64[ns]")
    assert set(events[Columns.event_type]) == {"view", "cart", "purchase"}
    assert events[Columns.value].dtype == np.float64 and events[Columns.value].isna().all()
    assert events[Columns.weight].dtype == np.float64 and (events[Columns.weight] == 1.0).all()
    assert events[Columns.source_row].dtype == np.int64
    assert (events[Columns.source_row].to_numpy() == np.arange(1, len(events) + 1)).all()
    assert events[Columns.timestamp].is_monotonic_increasing
    start, weeks = pd.Timestamp("2024-01-01"), pd.Timedelta(weeks=8)
    assert events[Columns.timestamp].between(start, start + weeks, inclusive="left").all()


def test_item_schema(small: RawData) -> None:
    items = small.items
    assert items is not None
    assert list(items.columns) == [
        Columns.item,
        Columns.title,
        Columns.category,
        Columns.brand,
        Columns.price,
        Columns.tags,
    ]
    assert items[Columns.item].is_unique and len(items) == SMALL["n_items"]
    assert set(small.events[Columns.item]) <= set(items[Columns.item])
    assert items[Columns.category].nunique() == SMALL["n_categories"]
    assert (items[Columns.price] > 0).all()
    assert (items[Columns.price].round(2) == items[Columns.price]).all()
    assert items[Columns.tags].str.split("|").map(len).ge(3).all()
    titles = items[Columns.title].str.split(" ")
    assert (titles.str[0] == items[Columns.brand].str.split(" ").str[0]).all()


def test_event_count_close_to_requested(small: RawData) -> None:
    assert abs(len(small.events) - SMALL["n_events"]) <= 0.1 * SMALL["n_events"]


def test_no_duplicate_event_keys(small: RawData) -> None:
    keys = [Columns.user, Columns.item, Columns.event_type, Columns.timestamp]
    assert not small.events.duplicated(keys).any()


def test_views_dominate_then_carts_then_purchases(small: RawData) -> None:
    counts = small.events[Columns.event_type].value_counts()
    assert counts["view"] > 5 * counts["cart"] > 0
    assert counts["cart"] > counts["purchase"] > 0


def test_purchases_follow_a_cart_of_the_same_item(small: RawData) -> None:
    events = small.events
    first = events.groupby([Columns.user, Columns.item, Columns.event_type])[
        Columns.timestamp
    ].min()
    bought = first.xs("purchase", level=Columns.event_type)
    carted = first.xs("cart", level=Columns.event_type).reindex(bought.index)
    assert (carted < bought).all()


def test_item_popularity_is_heavy_tailed(small: RawData) -> None:
    counts = small.events[Columns.item].value_counts()
    top_decile = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top_decile > 0.3  # 0.1 if uniform


def test_activity_is_heavy_tailed(small: RawData) -> None:
    per_user = small.events[Columns.user].value_counts()
    assert per_user.max() > 4 * per_user.median()


def test_users_concentrate_on_their_categories(small: RawData) -> None:
    events = with_category(small)
    top_share = events.groupby(Columns.user)[Columns.category].agg(
        lambda cats: cats.value_counts(normalize=True).iloc[0]
    )
    assert top_share.mean() > 3 / SMALL["n_categories"]


def hit_rates_at_10(raw: RawData) -> tuple[float, float]:
    """Leave each user's last new item out; hit@10 of item co-occurrence vs popularity."""
    assert raw.items is not None
    firsts = raw.events.drop_duplicates([Columns.user, Columns.item])  # time-ordered
    firsts = firsts[firsts.groupby(Columns.user)[Columns.item].transform("size") >= 3]
    held_out = firsts.groupby(Columns.user).tail(1)
    train = firsts.drop(index=held_out.index)
    users = pd.Categorical(train[Columns.user])
    items = pd.Categorical(train[Columns.item], categories=raw.items[Columns.item])
    shape = (len(users.categories), len(items.categories))
    x = sp.csr_matrix((np.ones(len(train)), (users.codes, items.codes)), shape=shape)
    co = (x.T @ x).toarray()
    np.fill_diagonal(co, 0)
    seen = x.toarray() > 0
    cf_scores = np.where(seen, -np.inf, x @ co)
    pop_scores = np.where(seen, -np.inf, np.asarray(x.sum(axis=0)))
    rows = pd.Categorical(held_out[Columns.user], categories=users.categories).codes
    targets = pd.Categorical(held_out[Columns.item], categories=items.categories).codes

    def hit_rate(scores: np.ndarray) -> float:
        top = np.argsort(-scores, axis=1, kind="stable")[rows, :10]
        return float((top == targets[:, None]).any(axis=1).mean())

    return hit_rate(cf_scores), hit_rate(pop_scores)


def test_co_occurrence_beats_popularity(small: RawData) -> None:
    cf, pop = hit_rates_at_10(small)
    assert cf > 1.3 * pop
    assert cf > pop + 0.1


def test_shift_adds_a_later_period_with_new_items(shifted: RawData) -> None:
    events = shifted.events
    end_of_base = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=8)
    later = events[events[Columns.timestamp] >= end_of_base]
    assert len(later) > 0.1 * len(events)
    assert abs(len(events) - SMALL["n_events"]) <= 0.1 * SMALL["n_events"]
    assert events[Columns.timestamp].max() < end_of_base + pd.Timedelta(weeks=SHIFT["weeks"])

    new_ids = {f"i{i:05d}" for i in range(SMALL["n_items"], 125)}
    assert shifted.items is not None and new_ids <= set(shifted.items[Columns.item])
    earlier = events[events[Columns.timestamp] < end_of_base]
    assert not set(earlier[Columns.item]) & new_ids
    assert later[Columns.item].isin(new_ids).mean() > 0.05


def category_shift(events: pd.DataFrame, cut: pd.Timestamp) -> float:
    """Total-variation distance between category mixes before and after `cut`."""
    before = events.loc[events[Columns.timestamp] < cut, Columns.category]
    after = events.loc[events[Columns.timestamp] >= cut, Columns.category]
    mixes = pd.concat(
        [before.value_counts(normalize=True), after.value_counts(normalize=True)], axis=1
    )
    return float(mixes.fillna(0).diff(axis=1).iloc[:, 1].abs().sum() / 2)


def test_shift_changes_the_category_mix() -> None:
    # bigger world than SMALL: heavy-tailed activity makes small-world category mixes noisy
    world = {**SMALL, "n_users": 2000, "n_items": 200, "n_events": 40_000}
    end_of_base = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=8)
    drifted = SyntheticSource(**world, shift=SHIFT).load()
    control = SyntheticSource(**world, shift={**SHIFT, "taste_mix": 0.0}).load()
    drift = category_shift(with_category(drifted), end_of_base)
    noise = category_shift(with_category(control), end_of_base)
    assert drift > 2 * noise


def test_shift_without_changes_still_works() -> None:
    raw = SyntheticSource(**SMALL, shift={"new_item_share": 0.0, "taste_mix": 0.0}).load()
    assert raw.items is not None and len(raw.items) == SMALL["n_items"]
    assert abs(len(raw.events) - SMALL["n_events"]) <= 0.1 * SMALL["n_events"]


def test_no_shift_means_no_new_items(small: RawData) -> None:
    assert small.items is not None and len(small.items) == SMALL["n_items"]


@pytest.mark.parametrize(
    "bad",
    [
        {"n_users": 0},
        {"n_items": 5, "n_categories": 10},
        {"taste_strength": 1.5},
        {"cart_rate": -0.1},
        {"n_users": "many"},
        {"start": "not a date"},
        {"shift": {"new_items": 0.2}},
        {"shift": {"new_item_share": 1.0}},
        {"shift": {"weeks": 0}},
    ],
)
def test_invalid_parameters_raise_config_error(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SyntheticSource(**{**SMALL, **bad})
