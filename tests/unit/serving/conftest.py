"""Fixtures for the serving tests: a small catalogue world with metadata and timestamps, a
trained recommender over it, and an in-memory registry (`FakeSource`).

BentoML's `/metrics` reads prometheus_client's multiprocess files, as in a real server: the
environment variable must be set before prometheus_client creates any metric.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recops-test-prom-")
import prometheus_client.values

if not getattr(prometheus_client.values.ValueClass, "_multiprocess", False):
    prometheus_client.values.ValueClass = prometheus_client.values.MultiProcessValue()

from recops.columns import Columns
from recops.features.dataset import Dataset
from recops.features.idmap import IdMap
from recops.models.als import ALSModel
from recops.models.recommender import Recommender
from recops.serving.config import CacheConfig, ServeConfig, project_serve_values
from recops.serving.refs import ModelRef

CATEGORIES = ("books", "games", "tools")
N_USERS, N_ITEMS = 90, 30
#: Users u0..u4 have one interaction each (below min_history: the fallback serves them).
LIGHT_USERS = [f"u{i}" for i in range(5)]


def world(seed: int = 0) -> Dataset:
    """Users of group g (u % 3) mostly use items of category g (i % 3); timestamps over 30
    days, the newest events on items 0..5."""
    rng = np.random.default_rng(seed)
    rows, cols, stamps = [], [], []
    start = pd.Timestamp("2024-03-01", tz="UTC")
    for u in range(N_USERS):
        own = [i for i in range(N_ITEMS) if i % 3 == u % 3]
        n = 1 if u < len(LIGHT_USERS) else 8
        picks = rng.choice(own, size=min(n, len(own)), replace=False).tolist()
        if n > 1:
            picks.append(int(rng.integers(N_ITEMS)))
        for item in dict.fromkeys(picks):
            rows.append(u)
            cols.append(item)
            day = 29.5 if item < 6 else float(rng.uniform(0, 10))
            stamps.append(start + pd.Timedelta(days=day))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))
    items = [f"i{j}" for j in range(N_ITEMS)]
    meta = pd.DataFrame(
        {
            Columns.item: items,
            Columns.title: [f"item {j}" for j in range(N_ITEMS)],
            Columns.category: [CATEGORIES[j % 3] for j in range(N_ITEMS)],
            Columns.brand: [f"brand{j % 4}" for j in range(N_ITEMS)],
            Columns.price: [float(j) if j % 5 else np.nan for j in range(N_ITEMS)],
            Columns.tags: [f"{CATEGORIES[j % 3]}|t{j % 2}" for j in range(N_ITEMS)],
        }
    )
    events = pd.DataFrame(
        {
            Columns.user_idx: np.asarray(rows, np.int32),
            Columns.item_idx: np.asarray(cols, np.int32),
            Columns.timestamp: pd.to_datetime(stamps),
            Columns.weight: np.ones(len(rows), np.float32),
        }
    )
    return Dataset(
        users=IdMap(np.array([f"u{i}" for i in range(N_USERS)], dtype=object), kind="user"),
        items=IdMap(np.array(items, dtype=object), kind="item"),
        user_items=matrix,
        item_meta=meta,
        events=events,
    )


def make_recommender(seed: int = 0, factors: int = 8) -> Recommender:
    dataset = world(seed)
    model = ALSModel(factors=factors, iterations=10, show_progress=False, random_state=seed)
    return Recommender.from_training(model.fit(dataset), dataset, dataset.events)


@pytest.fixture(scope="session")
def recommender() -> Recommender:
    return make_recommender(0)


@pytest.fixture(scope="session")
def other_recommender() -> Recommender:
    return make_recommender(1, factors=4)


@functools.cache
def shipped_cfg() -> ServeConfig:
    """`conf/serve` as shipped (the only home of the serving defaults)."""
    return ServeConfig.from_mapping(shipped_values({}))


def shipped_part(name: str, **changes: Any) -> Any:
    """One nested section of the shipped serving config (`canary`, `rerank`, ...), changed."""
    return dataclasses.replace(getattr(shipped_cfg(), name), **changes)


def shipped_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped `serve` group as a plain mapping, `changes` merged in (nested)."""
    from omegaconf import OmegaConf

    values = project_serve_values()
    assert values is not None, "run the tests from the project"
    merged = OmegaConf.to_container(OmegaConf.merge(values, dict(changes)), resolve=True)
    assert isinstance(merged, dict)
    return {str(k): v for k, v in merged.items()}


def make_cfg(**changes: object) -> ServeConfig:
    base = shipped_cfg().replace(
        model_name="m",
        poll_interval_s=0.2,
        sync_interval_s=0.05,
        cache=CacheConfig(size=100, ttl_s=60, warm_users=5),
    )
    return base.replace(**changes)


@pytest.fixture
def cfg() -> ServeConfig:
    return make_cfg()


class FakeSource:
    """An in-memory registry: alias -> version, version -> recommender (or the error its load
    raises)."""

    mode = "live"
    where = "memory://user:***@fake-registry"

    def __init__(self, model_name: str = "m") -> None:
        self.model_name = model_name
        self.aliases: dict[str, str] = {}
        self.versions: dict[str, Recommender | Exception] = {}
        self.loads: list[str] = []
        self.precomputed: Path | None = None
        self.history: list[str] = []  # past champions, oldest first (as the registry tag)
        self.down: Exception | None = None  # raised by every registry call while set
        self.delay_s = 0.0  # each load takes this long (a big model, a slow artifact store)

    def resolve(self, alias: str) -> ModelRef | None:
        if self.down is not None:
            raise self.down
        version = self.aliases.get(alias)
        if version is None:
            return None
        return self.resolve_version(version, alias)

    def past_champions(self) -> list[str]:
        if self.down is not None:
            raise self.down
        return list(reversed(self.history))

    def resolve_version(self, version: str, alias: str) -> ModelRef | None:
        if version not in self.versions:
            return None
        return ModelRef(self.model_name, version, alias, "registry", model_type="als")

    def load(self, ref: ModelRef) -> Recommender:
        self.loads.append(str(ref.version))
        if self.delay_s:
            time.sleep(self.delay_s)
        found = self.versions[str(ref.version)]
        if isinstance(found, Exception):
            raise found
        return found

    def precomputed_path(self, ref: ModelRef) -> Path | None:
        return self.precomputed


@pytest.fixture
def source(recommender: Recommender, other_recommender: Recommender) -> FakeSource:
    src = FakeSource()
    src.versions = {
        "1": recommender,
        "2": other_recommender,
        "3": FileNotFoundError("artifacts of v3 were deleted"),
    }
    src.aliases = {"champion": "1"}
    return src


def wait_until(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
