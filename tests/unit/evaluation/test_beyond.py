"""Beyond-accuracy metrics against hand computations, and cross-checked against Evidently
0.7's recsys metrics on the same small example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recops.evaluation.beyond import (
    feature_serendipity,
    gini_index,
    intra_list_diversity,
    item_features,
    list_matrix,
    personalisation,
    segment_beyond,
    serendipity,
    short_head,
)
from recops.evaluation.metrics import beyond_accuracy_metrics

# 3 users, 5 items (a..e), k = 2. Items' features: a, d = {x}; b, e = {y}; c = {x, y}.
ITEMS = ["a", "b", "c", "d", "e"]
META = pd.DataFrame(
    {"item_id": ITEMS, "category": ["x", "y", "x", "x", "y"], "tags": [None, None, "y", None, None]}
)
RECOS = np.array([[0, 1], [0, 2], [3, 4]])  # u1: a b, u2: a c, u3: d e
RELEVANT = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [1, 2, 0])), shape=(3, 5))  # b, c, a
HISTORY = sp.csr_matrix(([1.0] * 4, ([0, 0, 1, 2], [2, 3, 0, 1])), shape=(3, 5))  # c d | a | b
COS_XY = 1 / math.sqrt(2)  # cosine of {x} or {y} with {x, y}


def features() -> sp.csr_matrix:
    # category x|y and tag y on c: c's vector is (x, y) -> like the example above
    meta = META.assign(category=["x", "y", "x", "x", "y"], tags=[None, None, None, None, None])
    base = item_features(meta, ["category"]).toarray()
    base[2] = [COS_XY, COS_XY]
    return sp.csr_matrix(base)


def test_item_features_are_unit_one_hot_and_multi_hot() -> None:
    f = item_features(META, ["category", "tags"]).toarray()
    assert f.shape == (5, 3)  # x, y, tag y
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0)
    assert f[2] @ f[0] == pytest.approx(COS_XY)  # c: {x, tag y} vs a: {x}


def test_diversity_by_hand() -> None:
    ild = intra_list_diversity(list_matrix(RECOS, 5, 2), features())
    np.testing.assert_allclose(ild, [1.0, 1 - COS_XY, 1.0])  # one pair per list
    three = np.array([[0, 1, 2]])
    expected = (1.0 + (1 - COS_XY) + (1 - COS_XY)) / 3
    assert intra_list_diversity(list_matrix(three, 5, 3), features())[0] == pytest.approx(expected)
    assert np.isnan(intra_list_diversity(list_matrix(np.array([[0, -1]]), 5, 2), features())[0])


def test_personalisation_gini_long_tail_by_hand() -> None:
    lists = list_matrix(RECOS, 5, 2)
    # overlaps: (u1, u2) share a; all other pairs share nothing -> 1 - (1/2) / 3 pairs
    assert personalisation(lists, 2) == pytest.approx(1 - (0.5 / 3))
    assert gini_index(np.array([1, 1, 1, 1, 2])) == pytest.approx(4 / 24)
    assert gini_index(np.array([0, 0, 0, 6])) == pytest.approx(1.0)
    assert gini_index(np.array([2, 2, 2])) == pytest.approx(0.0)
    popularity = np.array([10.0, 5.0, 3.0, 1.0, 1.0])
    head = short_head(popularity, 0.5)  # a alone holds 10/20
    assert head.tolist() == [True, False, False, False, False]
    out = segment_beyond(RECOS, popularity, head, [2])
    assert out["long_tail_at_2"] == pytest.approx(4 / 6)  # 2 of 6 slots are item a


def test_serendipity_by_hand() -> None:
    # the 2 most popular items are a and b: u1's relevant b is expected; u2's c is not
    value = serendipity(RECOS, RELEVANT, np.array([0, 1, 2]), 2)
    np.testing.assert_allclose(value, [0.0, 0.5, 0.0])
    fs = feature_serendipity(RECOS, RELEVANT, HISTORY, features(), 2)
    # u1: history c, d vs relevant b: 1 - (cos(c,b) + cos(d,b)) / 2; u2: 1 - cos(a, c)
    np.testing.assert_allclose(fs[:2], [1 - COS_XY / 2, 1 - COS_XY])
    assert np.isnan(fs[2])  # u3's relevant item a was not recommended


def evidently_values(k: int) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.core.datasets import Recsys
    from evidently.metrics import (
        Diversity,
        Novelty,
        Personalization,
        PopularityBiasMetric,
        Serendipity,
    )

    f = features().toarray()
    rows = [
        (f"u{u}", ITEMS[i], rank + 1, int(RELEVANT[u, i] > 0), *f[i])
        for u in range(3)
        for rank, i in enumerate(RECOS[u])
    ]
    current = pd.DataFrame(rows, columns=["user_id", "item_id", "prediction", "target", "f0", "f1"])
    hist = HISTORY.tocoo()
    train = pd.DataFrame(
        {"user_id": [f"u{u}" for u in hist.row], "item_id": [ITEMS[i] for i in hist.col]}
    ).assign(prediction=1, target=1, f0=f[hist.col, 0], f1=f[hist.col, 1])
    definition = DataDefinition(
        numerical_columns=["f0", "f1", "prediction", "target"],
        ranking=[Recsys(recommendations_type="rank")],
    )
    metrics = [
        Diversity(k=k, item_features=["f0", "f1"]),
        Personalization(k=k),
        Serendipity(k=k, item_features=["f0", "f1"]),
        PopularityBiasMetric(k=k, metric="gini"),
        PopularityBiasMetric(k=k, metric="arp"),
        Novelty(k=k),
    ]
    snapshot = Report(metrics).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        additional_data={
            "current_train_data": Dataset.from_pandas(train, data_definition=definition)
        },
    )
    values = [m["value"] for m in snapshot.dict()["metrics"]]
    names = ["diversity", "personalisation", "serendipity", "gini", "arp", "novelty"]
    return dict(zip(names, values, strict=True))


def test_cross_checked_against_evidently() -> None:
    k = 2
    ev = evidently_values(k)
    lists = list_matrix(RECOS, 5, k)
    # Evidently divides the distance sum by the list length: ours x (k - 1) / 2
    ours_ild = float(np.mean(intra_list_diversity(lists, features())))
    assert ours_ild * (k - 1) / 2 == pytest.approx(ev["diversity"])
    assert personalisation(lists, k) == pytest.approx(ev["personalisation"])
    counts = np.asarray(lists.sum(axis=0)).ravel()
    assert gini_index(counts[counts > 0]) == pytest.approx(ev["gini"])  # over recommended items
    fs = feature_serendipity(RECOS, RELEVANT, HISTORY, features(), k)
    assert float(np.nanmean(fs)) == pytest.approx(ev["serendipity"])
    popularity = np.asarray((HISTORY > 0).sum(axis=0)).ravel().astype(float)
    ours = beyond_accuracy_metrics(RECOS, popularity, 3, ks=[k])
    assert ours["novelty_at_2"] == pytest.approx(ev["novelty"])
    # Evidently's ARP averages per-user means of raw counts and drops items without training
    # popularity (e); ours counts them as 0. Without e (padding) and all means equal: the same.
    trained_only = np.where(RECOS == 4, -1, RECOS)
    arp = beyond_accuracy_metrics(trained_only, popularity, 3, ks=[k])["arp_at_2"]
    assert arp * 3 == pytest.approx(ev["arp"])
