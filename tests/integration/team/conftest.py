"""Session-scoped team engines: PostgreSQL, S3 (moto) and an MLflow server on both.

Started once per test session (together ~8 s) and stopped as process groups at the end. A
component that cannot run here makes the tests that need it skip, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .engines import EngineMissing, MlflowServer, Postgres, S3Server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        server = Postgres().start()
    except EngineMissing as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        server = S3Server(tmp_path_factory.mktemp("s3")).start()
    except EngineMissing as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, s3: S3Server
) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), postgres, s3).start()
    try:
        yield server
    finally:
        server.stop()
