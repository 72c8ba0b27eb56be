"""The engines themselves: PostgreSQL answers, S3 stores objects, the MLflow server logs to
PostgreSQL with artifacts landing in the S3 bucket."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from .engines import MlflowServer, Postgres, S3Server

pytestmark = pytest.mark.integration


def test_postgres_creates_databases(postgres: Postgres) -> None:
    import psycopg2

    url = postgres.create_database("smoke")
    assert url.endswith("/smoke")
    with (
        psycopg2.connect(
            host="127.0.0.1", port=postgres.port, user="postgres", dbname="smoke"
        ) as c,
        c.cursor() as cur,
    ):
        cur.execute("SELECT version()")
        assert "PostgreSQL" in cur.fetchone()[0]


def test_mlflow_server_proxies_artifacts_to_s3(
    mlflow_server: MlflowServer, s3: S3Server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.create_experiment("engines-smoke")
    run = client.create_run(experiment)
    (tmp_path / "hello.txt").write_text("hi")
    client.log_artifact(run.info.run_id, str(tmp_path / "hello.txt"))
    assert any(key.endswith(f"{run.info.run_id}/artifacts/hello.txt") for key in s3.object_keys())
