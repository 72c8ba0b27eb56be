"""pyspark.ml ALS with implicit preferences behind the model contract (`model=spark_als`).

Spark trains; what it leaves are user and item factors, exported into the same
`FoldInFactorModel` as implicit's ALS, so scoring, serving, evaluation, the cold-start
fallback and the worker's fold-in run exactly the same code. The model folder holds the
factors only (no Spark needed to load or serve it).

The training interactions come from the features parquet the dataset was loaded from
(`train_events.parquet`: user_idx, item_idx, weight), read by Spark itself, so a cluster can
read it from shared or object storage (`events_uri: s3://...`; see `read_events` for S3 without
Hadoop's S3A connector); a dataset built in memory (e.g. a validation split) is handed to Spark
from its matrix.

Spark's ALS differs from implicit's in what its hyperparameters mean: `regParam` is scaled
by each user's (item's) number of interactions (ALS-WR) and the confidence is
1 + alpha * weight, so values do not carry over between `als` and `spark_als`.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recops.columns import Columns
from recops.data.object_store import is_s3_uri, read_s3_parquet, s3_endpoint
from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.factors import FoldInFactorModel
from recops.redaction import redact

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
_RATING = "rating"
_EVENT_COLUMNS = [Columns.user_idx, Columns.item_idx, Columns.weight]
#: Hadoop's S3 connector; not bundled with pyspark (Maven: org.apache.hadoop:hadoop-aws).
S3A_PACKAGE = "org.apache.hadoop:hadoop-aws"


def spark_missing() -> str | None:
    """Why Spark cannot run here (None when it can): pyspark or Java missing."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'recops[spark]')"
    java_home = os.environ.get("JAVA_HOME", "")
    if not os.path.exists(os.path.join(java_home, "bin", "java")) and not shutil.which("java"):
        return "Java is not installed (Debian package openjdk-17-jre-headless)"
    return None


def spark_session(
    master: str, driver_memory: str | None = None, conf: Mapping[str, Any] | None = None
) -> SparkSession:
    """The process's Spark session (started once, ~9 s; later calls reuse it).

    Bound to loopback and without the web UI: a local session is a library, not a service.
    """
    reason = spark_missing()
    if reason is not None:
        raise ConfigError(f"model=spark_als needs Spark: {reason}")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if active.sparkContext.master != master:
            log.warning(
                "Spark session already running on %s; not starting one on %s",
                active.sparkContext.master,
                master,
            )
        return active
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName("recops")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # pandas writes nanosecond timestamps, which Spark refuses to read otherwise
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
    )
    if driver_memory:
        builder = builder.config("spark.driver.memory", str(driver_memory))
    for key, value in (conf or {}).items():
        builder = builder.config(str(key), str(value))
    log.info("starting Spark (%s)", master)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    if session.sparkContext.getCheckpointDir() is None:
        # ALS checkpoints its factors every few iterations only with a checkpoint folder;
        # without one the lineage grows until the JVM's stack overflows.
        folder = tempfile.mkdtemp(prefix="recops-spark-checkpoints-")
        atexit.register(shutil.rmtree, folder, True)
        session.sparkContext.setCheckpointDir(folder)
    return session


class SparkALSModel(FoldInFactorModel):
    """Spark's implicit-feedback ALS; factors exported to numpy after training."""

    model_type = "spark_als"

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.1,
        alpha: float = 1.0,
        random_state: int | None = 42,
        events_uri: str | None = None,
        master: str = "local[*]",
        driver_memory: str | None = None,
        spark_conf: Mapping[str, Any] | None = None,
        num_blocks: int | None = None,
    ) -> None:
        super().__init__()
        self.factors = int(factors)
        self.iterations = int(iterations)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.random_state = random_state
        self.events_uri = events_uri
        self.master = str(master)
        self.driver_memory = driver_memory
        self.spark_conf = dict(spark_conf or {})
        self.num_blocks = None if num_blocks is None else int(num_blocks)

    def _fit(self, dataset: Dataset) -> None:
        from pyspark.ml.recommendation import ALS

        spark = spark_session(self.master, self.driver_memory, self.spark_conf)
        ratings = self._ratings(spark, dataset)
        blocks = self.num_blocks or spark.sparkContext.defaultParallelism
        estimator = ALS(
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            rank=self.factors,
            maxIter=self.iterations,
            regParam=self.regularization,
            alpha=self.alpha,
            implicitPrefs=True,
            userCol=Columns.user_idx,
            itemCol=Columns.item_idx,
            ratingCol=_RATING,
            seed=0 if self.random_state is None else int(self.random_state),
            coldStartStrategy="drop",
        )
        fitted = estimator.fit(ratings)
        self.user_factors = _dense(fitted.userFactors.toPandas(), dataset.n_users, self.factors)
        self.item_factors = _dense(fitted.itemFactors.toPandas(), dataset.n_items, self.factors)

    def _ratings(self, spark: SparkSession, dataset: Dataset) -> DataFrame:
        """(user_idx, item_idx, rating): summed weights per pair, as in `user_items`."""
        from pyspark.sql import functions as F

        uri = self.events_uri or dataset.events_uri
        if uri is None:
            return spark.createDataFrame(_matrix_frame(dataset.user_items))
        events = read_events(spark, str(uri))
        missing = {Columns.user_idx, Columns.item_idx, Columns.weight} - set(events.columns)
        if missing:
            raise ConfigError(f"model.events_uri {uri}: no column(s) {', '.join(sorted(missing))}")
        return events.groupBy(Columns.user_idx, Columns.item_idx).agg(
            F.sum(Columns.weight).cast("float").alias(_RATING)
        )

    def fold_in_solver(self, user_items: sp.csr_matrix) -> AlternatingLeastSquares:
        """implicit's solver with Spark's loss approximated: Spark scales regParam by each
        user's interaction count; implicit takes one value, so the mean count is used."""
        per_user = max(user_items.nnz / max(user_items.shape[0], 1), 1.0)
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization * per_user,
            alpha=self.alpha,
            iterations=1,
            num_threads=0,
            random_state=self.random_state,
        )


def read_events(spark: SparkSession, uri: str) -> DataFrame:
    """The parquet at `uri` as a Spark DataFrame, read by Spark itself where it can.

    An S3 URI needs Hadoop's S3A connector on Spark's classpath. Without it the driver reads
    the interaction columns with pyarrow (the project's S3 settings) and hands Spark an
    Arrow-backed DataFrame: the same training data, read by one process instead of in
    parallel by the executors.
    """
    if not is_s3_uri(uri):
        log.info("Spark reads the training interactions from %s", uri)
        return spark.read.parquet(uri)
    if s3a_available(spark):
        s3a = "s3a://" + uri.split("://", 1)[1]
        default_s3a_endpoint(spark)
        log.info("Spark reads the training interactions from %s (S3A connector)", redact(s3a))
        return spark.read.parquet(s3a)
    log.info(
        "Spark has no S3A connector (%s): the driver reads %s with pyarrow and hands it to "
        "Spark; a cluster should add %s to spark.jars.packages (conf/spark) to read in parallel",
        S3A_PACKAGE,
        redact(uri),
        S3A_PACKAGE,
    )
    return spark.createDataFrame(read_s3_parquet(uri, _EVENT_COLUMNS))


def s3a_available(spark: SparkSession) -> bool:
    """Whether Spark's Hadoop file systems include S3A (hadoop-aws and its SDK loadable)."""
    from py4j.protocol import Py4JError

    jvm = spark.sparkContext._jvm
    assert jvm is not None  # a classic (non-Connect) session always has its gateway
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("s3a", hadoop)
    except Py4JError:
        return False
    return True


def default_s3a_endpoint(spark: SparkSession) -> None:
    """Point S3A at the project's S3 endpoint (`MLFLOW_S3_ENDPOINT_URL`, ...) with path-style
    addressing (S3-compatible stores), each unless the Spark config sets it
    (`spark.hadoop.fs.s3a.endpoint`, `spark.hadoop.fs.s3a.path.style.access`)."""
    endpoint = s3_endpoint()
    if not endpoint:
        return
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in (("endpoint", endpoint), ("path.style.access", "true")):
        if spark.conf.get(f"spark.hadoop.fs.s3a.{key}", None) is None:
            hadoop.set(f"fs.s3a.{key}", value)


def _matrix_frame(matrix: sp.csr_matrix) -> pd.DataFrame:
    coo = matrix.tocoo()
    keep = coo.data > 0
    return pd.DataFrame(
        {
            Columns.user_idx: coo.row[keep].astype(np.int32),
            Columns.item_idx: coo.col[keep].astype(np.int32),
            _RATING: coo.data[keep].astype(np.float32),
        }
    )


def _dense(frame: pd.DataFrame, n_rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows as an n_rows x rank array; ids without interactions
    (never seen by Spark) get zero factors."""
    out = np.zeros((n_rows, rank), dtype=np.float32)
    if len(frame):
        ids = frame["id"].to_numpy(dtype=np.int64)
        out[ids] = np.asarray(frame["features"].tolist(), dtype=np.float32)
    return out
