"""Trained worlds the integration tests share, built by the real pipeline (`run_chain`).

- `tiny_registry`: a temp MLflow store whose v1 is an ALS champion of the tiny world, other
  models registered after it, and a broken version last (a copy of v1 whose artifacts are
  gone). The serving and Prometheus tests start `bentoml serve` on it.
- `build_tiny_project`: a whole project folder (conf/, bentos/, DuckDB store, snapshot,
  features, SQLite MLflow store with its artifacts) whose registered champion is a tiny ALS.
  Built once per session (the `tiny_project_template` fixture) and copied per user
  (`copy_project`) with its artifact locations repointed (what `recops backup restore` does),
  for the GDPR and backup tests, which both change their copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from recops.backup.restore import repoint_artifacts
from recops.config import compose
from recops.pipeline.stages import run_chain
from recops.tracking.model_files import load_registered_recommender

from .conftest import PROJECT_ROOT, TINY_WORLD, tiny_overrides

NAME = "recops-recommender"
#: The tiny ALS every shared world trains: few factors (see TINY_WORLD), no progress bars.
TINY_ALS = {"model": "als", "model.factors": 16, "model.show_progress": "false"}


@contextmanager
def tracking(uri: str, root: Path) -> Iterator[MlflowClient]:
    """This process logs to `uri` with `root` as the project (RECOPS_ROOT) while inside."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("RECOPS_ROOT", str(root))
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(uri)
        try:
            yield MlflowClient(tracking_uri=uri)
        finally:
            mlflow.set_tracking_uri(None)


@dataclass
class TinyRegistry:
    tmp: Path
    uri: str
    users: list[str]  # every user of v1
    active: list[str]  # v1's users with 5+ events: the model (not the fallback) answers them
    items: list[str]
    broken: str  # the version whose artifacts are gone

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)


def tiny_registry(tmp: Path, *then: str) -> TinyRegistry:
    """v1: a tiny ALS, champion; then one version per model in `then` (registered, the gate
    decides their aliases); last a copy of v1 whose artifacts were deleted."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with tracking(uri, PROJECT_ROOT) as client:
        first = run_chain(compose(tiny_overrides(tmp, **TINY_ALS)))
        assert first["registry"]["version"] == "1" and first["registry"]["promoted"]
        for model in then:
            run_chain(compose(tiny_overrides(tmp, model=model)))
        broken = register_broken_copy(client, tmp / "broken", "1")
        recommender = load_registered_recommender(client, NAME, "1")
        client.set_registered_model_alias(NAME, "champion", "1")
    history = recommender.model.seen.getnnz(axis=1)
    users = [str(u) for u in recommender.users.external_ids]
    active = [u for u, n in zip(users, history, strict=True) if n >= 5]
    items = [str(i) for i in recommender.items.external_ids]
    return TinyRegistry(tmp, uri, users, active, items, broken)


def register_broken_copy(client: MlflowClient, folder: Path, version: str) -> str:
    """A new version from a copy of `version`'s files, then deleted: it cannot load."""
    source = client.get_model_version(NAME, version)
    copy = mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=str(folder))
    broken = client.create_model_version(NAME, source=copy, run_id=source.run_id)
    shutil.rmtree(copy)
    return str(broken.version)


@dataclass
class TinyProject:
    root: Path
    uri: str
    overrides: list[str]  # the tiny world's data overrides, for CLI commands on it


def build_tiny_project(root: Path) -> None:
    """conf/ and bentos/ copied to `root`, and the whole chain run there (RECOPS_ROOT=root): the
    tiny world's DuckDB store, snapshot, features and a registered ALS champion."""
    for name in ("conf", "bentos"):
        shutil.copytree(PROJECT_ROOT / name, root / name)
    overrides = [f"{k}={v}" for k, v in TINY_WORLD.items()]
    with tracking(f"sqlite:///{root / 'mlflow.db'}", root):
        summary = run_chain(compose([*overrides, *(f"{k}={v}" for k, v in TINY_ALS.items())]))
    assert summary["registry"]["promoted"], summary


def copy_project(template: Path, root: Path) -> TinyProject:
    """A private copy of a built tiny project at `root`, its MLflow store pointing at its own
    artifacts (so a test may change them)."""
    shutil.copytree(template, root)
    old, new = str(template.resolve() / "mlartifacts"), str(root.resolve() / "mlartifacts")
    assert repoint_artifacts(root / "mlflow.db", old, new) > 0, "no artifact location moved"
    assert repoint_artifacts(root / "mlflow.db", old, new) == 0  # none left in the template
    overrides = [f"{k}={v}" for k, v in TINY_WORLD.items()]
    return TinyProject(root, f"sqlite:///{root / 'mlflow.db'}", overrides)


def served_users(uri: str, root: Path, version: str = "1") -> list[str]:
    """Users of `version` with 5+ events (the model, not the fallback, answers them)."""
    with tracking(uri, root) as client:
        rec: Any = load_registered_recommender(client, NAME, version)
    history = rec.model.seen.getnnz(axis=1)
    return [str(u) for u, n in zip(rec.users.external_ids, history, strict=True) if n >= 5]
