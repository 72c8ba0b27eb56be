"""Real team-scale engines on 127.0.0.1 for tests: a throwaway PostgreSQL cluster, a moto S3
server and an MLflow tracking server on that database with its artifacts proxied to S3.

Each is a plain class with `start()`/`stop()` so tests and benchmarks share them; the
conftest wraps them in session-scoped fixtures. Every process runs in its own process group
and is stopped as a group.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..servers import free_port, stop

S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class EngineMissing(RuntimeError):
    """A component cannot run on this machine (the reason says why); its tests skip."""


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise EngineMissing(f"PostgreSQL's {name} is not installed (Debian package postgresql)")
    return found[-1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {seconds} s:\n{log.read_text()[-3000:]}")


def _checked(cmd: list[str], prefix: list[str]) -> None:
    proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


@dataclass
class Postgres:
    """A PostgreSQL cluster in `folder`, run as the `postgres` user (trust auth, loopback)."""

    folder: Path = Path()
    port: int = 0
    user: str = "postgres"
    _prefix: list[str] = field(default_factory=list)

    def start(self) -> Postgres:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise EngineMissing("runuser is missing: cannot run initdb as postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        else:
            prefix = []  # a normal user runs its own cluster
        try:
            import psycopg2  # noqa: F401
        except ImportError as exc:
            raise EngineMissing(f"psycopg2 is not installed: {exc}") from exc
        # pytest's temp root is private to root: the cluster gets its own folder under /tmp.
        self.folder = Path(tempfile.mkdtemp(prefix="recops-pg-"))
        if prefix:
            shutil.chown(self.folder, "postgres", "postgres")
        data, self.port = self.folder / "data", free_port()
        self._prefix = prefix
        _checked([initdb, "-D", str(data), "-U", self.user, "-A", "trust", "-E", "UTF8"], prefix)
        # max_connections: one cluster serves the MLflow server, Optuna's workers and the DVC
        # test of a session at once; the default 100 ran out ("too many clients already").
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c max_connections=400"
        )
        log = str(self.folder / "log")
        _checked([pg_ctl, "-D", str(data), "-l", log, "-w", "-o", options, "start"], prefix)
        return self

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        cmd = [*self._prefix, pg_ctl, "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"]
        subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (if new) and return its SQLAlchemy URL."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


@dataclass
class S3Server:
    """`moto_server` (in-memory S3) on a free loopback port, with `bucket` created."""

    folder: Path
    bucket: str = "recops"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client sets to use this server (MLflow, boto3, DVC)."""
        return {
            **S3_KEYS,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def start(self) -> S3Server:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        if binary is None:
            raise EngineMissing("moto_server is not installed (pip install 'moto[server]')")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port, log = free_port(), self.folder / "moto.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **S3_KEYS},
                start_new_session=True,
            )
        _wait_http(self.endpoint, self.proc, log, 30)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_keys())

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_KEYS["AWS_DEFAULT_REGION"],
    }


@dataclass
class MlflowServer:
    """`mlflow server` on PostgreSQL database `database`, artifacts proxied to S3."""

    folder: Path
    postgres: Postgres
    s3: S3Server
    database: str = "mlflow"
    prefix: str = "mlartifacts"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend(self) -> str:
        return self.postgres.url(self.database)

    def start(self) -> MlflowServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        backend = self.postgres.create_database(self.database)
        self.port, log = free_port(), self.folder / "mlflow-server.log"
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend,
            "--artifacts-destination", f"s3://{self.s3.bucket}/{self.prefix}",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        env = {
            **os.environ,
            **self.s3.env,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_ENABLE_TELEMETRY": "false",
            **self.extra_env,
        }
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            env.pop(key, None)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _wait_http(f"{self.uri}/health", self.proc, log, 90)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def client_env(server: MlflowServer, **extra: str) -> dict[str, str]:
    """Environment of a RecOps command against the team server (artifacts via the server)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in ("MLFLOW_REGISTRY_URI", "RECOPS_ROOT", "MLFLOW_S3_ENDPOINT_URL"):
        env.pop(key, None)
    env.update(
        MLFLOW_TRACKING_URI=server.uri,
        OPENBLAS_NUM_THREADS="1",
        DVC_NO_ANALYTICS="1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **S3_KEYS,
        **extra,
    )
    return env
