"""`model=spark_als` on features kept in S3 (the moto server), without Hadoop's S3A connector
(hadoop-aws comes from Maven, which these machines cannot reach): the driver reads the parquet
with pyarrow and Spark trains on it, giving the same factors as from the local copy."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.errors import DataSourceError
from recops.features.dataset import Dataset
from recops.models.spark_als import (
    SparkALSModel,
    default_s3a_endpoint,
    read_events,
    s3a_available,
    spark_missing,
    spark_session,
)

from ...unit.serving.conftest import world
from .engines import S3Server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(spark_missing() is not None, reason=str(spark_missing())),
]
KEY = "features/train_events.parquet"


@pytest.fixture(scope="module")
def s3_env(s3: S3Server) -> Iterator[S3Server]:
    """This process talks to the moto server as a user would to MinIO."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        for key, value in s3.env.items():
            patch.setenv(key, value)
        yield s3


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server) -> Dataset:
    """A features folder saved locally, its training events also uploaded to S3."""
    folder = tmp_path_factory.mktemp("spark-s3") / "features"
    world(0).save(folder)
    loaded = Dataset.load(folder)
    assert loaded.events_uri is not None
    s3_env.client().upload_file(loaded.events_uri, s3_env.bucket, KEY)
    return loaded


@pytest.fixture(scope="module")
def local(features: Dataset) -> SparkALSModel:
    """Trained from the local copy of the features."""
    return spark_model().fit(features)


def spark_model(**params: object) -> SparkALSModel:
    return SparkALSModel(factors=8, iterations=5, master="local[2]", random_state=7, **params)  # type: ignore[arg-type]


def test_spark_als_fits_from_s3_like_from_the_local_copy(
    features: Dataset, local: SparkALSModel, s3_env: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"s3://{s3_env.bucket}/{KEY}"
    with caplog.at_level(logging.INFO, logger="recops.models.spark_als"):
        remote = spark_model(events_uri=uri).fit(features)
    path_taken = [r.getMessage() for r in caplog.records if uri in r.getMessage()]
    assert len(path_taken) == 1, caplog.text
    assert "driver reads" in path_taken[0] and "pyarrow" in path_taken[0]
    assert "org.apache.hadoop:hadoop-aws" in path_taken[0]
    assert "spark.jars.packages" in path_taken[0]
    np.testing.assert_allclose(remote.user_factors, local.user_factors, atol=1e-5)  # type: ignore[arg-type]
    np.testing.assert_allclose(remote.item_factors, local.item_factors, atol=1e-5)  # type: ignore[arg-type]
    assert np.abs(remote.item_factors).sum() > 0  # type: ignore[arg-type]


def test_hadoops_s3a_name_reads_the_same_rows(features: Dataset, s3_env: S3Server) -> None:
    spark = spark_session("local[2]")
    columns = ["user_idx", "item_idx", "weight"]
    remote = read_events(spark, f"s3a://{s3_env.bucket}/{KEY}").toPandas()
    local = read_events(spark, str(features.events_uri)).select(*columns).toPandas()
    assert list(remote.columns) == columns and len(remote) > 0
    pd.testing.assert_frame_equal(
        remote.sort_values(columns).reset_index(drop=True),
        local.sort_values(columns).reset_index(drop=True),
    )


def test_a_missing_object_is_a_clear_error_naming_the_uri(
    features: Dataset, s3_env: S3Server
) -> None:
    uri = f"s3://{s3_env.bucket}/nowhere/train_events.parquet"
    expected = re.escape(f"cannot read {uri} (endpoint {s3_env.endpoint})")
    with pytest.raises(DataSourceError, match=expected):
        spark_model(events_uri=uri).fit(features)


def test_an_object_without_the_columns_names_them(
    features: Dataset, s3_env: S3Server, tmp_path: Path
) -> None:
    pd.DataFrame({"user": [0], "item": [1]}).to_parquet(tmp_path / "bad.parquet")
    s3_env.client().upload_file(str(tmp_path / "bad.parquet"), s3_env.bucket, "bad.parquet")
    uri = f"s3://{s3_env.bucket}/bad.parquet"
    with pytest.raises(DataSourceError, match=re.escape(f"{uri}: no column(s) item_idx, user_idx")):
        spark_model(events_uri=uri).fit(features)


def test_s3a_follows_the_projects_endpoint_unless_configured(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark = spark_session("local[2]")
    assert not s3a_available(spark)  # pyspark ships without hadoop-aws
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    keys = ("fs.s3a.endpoint", "fs.s3a.path.style.access")
    before = {key: hadoop.get(key) for key in keys}
    try:
        monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1")  # MLflow's name wins
        default_s3a_endpoint(spark)
        assert [hadoop.get(key) for key in keys] == ["http://127.0.0.1:1", "true"]
        for key in keys:  # the user's own settings
            spark.conf.set(f"spark.hadoop.{key}", "mine")
            hadoop.set(key, "mine")
        default_s3a_endpoint(spark)
        assert [hadoop.get(key) for key in keys] == ["mine", "mine"]
    finally:
        for key, value in before.items():
            spark.conf.unset(f"spark.hadoop.{key}")
            if value is None:
                hadoop.unset(key)
            else:
                hadoop.set(key, value)
