"""Spark ALS beyond the shared contract: it reads the features parquet, its folder loads and
serves without Spark through the same service code as `als`, and it folds in like `als`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.factors import FoldInFactorModel
from recops.models.recommender import Recommender
from recops.models.spark_als import SparkALSModel, spark_missing
from recops.serving.runtime import ServingRuntime

from ..serving.conftest import LIGHT_USERS, FakeSource, make_cfg, world

pytestmark = pytest.mark.skipif(spark_missing() is not None, reason=str(spark_missing()))


def spark_model(**params: object) -> SparkALSModel:
    return SparkALSModel(factors=8, iterations=5, master="local[2]", **params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained() -> tuple[Dataset, Recommender]:
    dataset = world(0)
    model = spark_model().fit(dataset)
    return dataset, Recommender.from_training(model, dataset, dataset.events)


def test_spark_reads_the_features_parquet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world(0).save(tmp_path / "features")
    loaded = Dataset.load(tmp_path / "features")
    assert loaded.events_uri == str(tmp_path / "features" / "train_events.parquet")
    with caplog.at_level(logging.INFO, logger="recops.models.spark_als"):
        model = spark_model().fit(loaded)
    assert f"reads the training interactions from {loaded.events_uri}" in caplog.text
    assert model.user_factors is not None and model.user_factors.shape == (loaded.n_users, 8)
    # users and items with interactions get factors; the ranking is personalised
    assert np.abs(model.item_factors).sum(axis=1).min() > 0  # type: ignore[union-attr]


def test_a_source_without_the_columns_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"user": [0], "item": [1]}).to_parquet(bad)
    with pytest.raises(ConfigError, match=r"bad.parquet: no column\(s\) item_idx, user_idx"):
        spark_model(events_uri=str(bad)).fit(world(0))


def test_it_serves_through_the_same_service_code_without_spark(
    trained: tuple[Dataset, Recommender], tmp_path: Path
) -> None:
    _, recommender = trained
    recommender.save(tmp_path / "model")
    loaded = Recommender.load(tmp_path / "model")  # plain files: factors, no Spark session
    assert isinstance(loaded.model, SparkALSModel)
    source = FakeSource()
    source.versions, source.aliases = {"1": loaded}, {"champion": "1"}
    runtime = ServingRuntime(make_cfg(), source)
    runtime.loader.refresh()
    note: dict[str, object] = {}
    answer = runtime.engine.recommend(runtime.engine.query("u10", 3), note).to_dict()
    assert note["source"] == "model" and len(answer["items"]) == 3
    runtime.engine.recommend(runtime.engine.query(LIGHT_USERS[0], 3), note)
    assert note["source"] == "fallback"  # the same cold-start fallback as every model


def test_it_folds_in_like_als(trained: tuple[Dataset, Recommender]) -> None:
    dataset, recommender = trained
    base = recommender.model
    assert isinstance(base, FoldInFactorModel) and base.item_factors is not None
    known = np.ones(dataset.n_items, dtype=bool)
    known[:3] = False  # three "new" items get factors from the users
    folded = type(base)(**base.get_params()).fold_in(dataset, base.item_factors, known)
    np.testing.assert_array_equal(folded.item_factors[3:], base.item_factors[3:])  # type: ignore[index]
    assert np.abs(folded.item_factors[:3]).sum() > 0  # type: ignore[index]
    ids, _ = folded.recommend(np.arange(dataset.n_users), k=3)
    assert (ids >= 0).all()
