"""Isolated MLflow stores for integration tests, fast.

Creating MLflow's SQLite schema (its migrations) takes ~8 s per new database file, most of a
small test's run time. An initialised, empty store is made once per session and copied.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

DB_FILE = "mlflow.db"
_template: Path | None = None


def initialised_store(folder: Path) -> str:
    """Copy an initialised empty store to `folder/mlflow.db`; returns its tracking URI."""
    global _template
    if _template is None:
        folder_made = Path(tempfile.mkdtemp(prefix="recops-mlflow-"))
        atexit.register(shutil.rmtree, folder_made, True)
        made = folder_made / DB_FILE
        MlflowClient(tracking_uri=f"sqlite:///{made}").search_experiments()
        _template = made
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_template, folder / DB_FILE)
    return f"sqlite:///{folder / DB_FILE}"


@contextmanager
def tracking_env(uri: str, project_root: Path) -> Iterator[str]:
    """MLFLOW_TRACKING_URI (and RECOPS_ROOT) set for this process while inside."""
    saved = {
        k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RECOPS_ROOT")
    }
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ["RECOPS_ROOT"] = str(project_root)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        mlflow.set_tracking_uri(None)
