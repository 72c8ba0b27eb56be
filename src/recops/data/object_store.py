"""Reading parquet from S3 or an S3-compatible store (MinIO, Ceph, a moto test server).

The store is addressed the way the rest of the project addresses it (MLflow's S3 artifacts,
the DVC remote): credentials from the usual AWS chain (`AWS_ACCESS_KEY_ID`, ... or
~/.aws), the endpoint of an S3-compatible store from `MLFLOW_S3_ENDPOINT_URL`, else
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (unset: AWS S3 itself).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from recops.errors import DataSourceError
from recops.redaction import redact

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow import fs as pafs

#: URI schemes that name an S3 object (`s3a`/`s3n` are Hadoop's names for the same thing).
S3_SCHEMES = ("s3", "s3a", "s3n")
ENDPOINT_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def is_s3_uri(uri: str) -> bool:
    """True for `s3://`, `s3a://` and `s3n://` URIs."""
    return urlsplit(str(uri)).scheme.lower() in S3_SCHEMES


def s3_endpoint() -> str | None:
    """The endpoint URL of an S3-compatible store, from the environment (None: AWS S3)."""
    return next((os.environ[k] for k in ENDPOINT_VARIABLES if os.environ.get(k)), None)


def s3_filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 file system on the configured endpoint and credentials."""
    from pyarrow import fs as pafs

    kwargs: dict[str, str] = {}
    endpoint = s3_endpoint()
    if endpoint:
        parts = urlsplit(endpoint)
        kwargs["endpoint_override"] = parts.netloc or parts.path
        kwargs["scheme"] = parts.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def read_s3_parquet(uri: str, columns: list[str] | None = None) -> pa.Table:
    """The parquet file (or folder of parts) at an S3 `uri` as an Arrow table.

    Raises DataSourceError naming the URI (never its credentials) when it cannot be read.
    """
    import pyarrow.parquet as pq

    parts = urlsplit(str(uri))
    if parts.scheme.lower() not in S3_SCHEMES or not parts.netloc:
        raise DataSourceError(f"{redact(str(uri))}: not an s3://bucket/key URI")
    path = f"{parts.netloc.rsplit('@', 1)[-1]}{parts.path}".rstrip("/")
    try:
        dataset = pq.ParquetDataset(path, filesystem=s3_filesystem())
        missing = sorted(set(columns or []) - set(dataset.schema.names))
        if missing:
            raise DataSourceError(f"{redact(str(uri))}: no column(s) {', '.join(missing)}")
        return dataset.read(columns=columns)
    except (OSError, ValueError) as exc:
        where = s3_endpoint() or "AWS S3"
        raise DataSourceError(
            f"cannot read {redact(str(uri))} (endpoint {redact(where)}): {redact(str(exc))}"
        ) from exc
