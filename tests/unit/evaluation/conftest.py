"""A small synthetic world, split in time, with a fitted ALS and EASE (module-scoped)."""

from __future__ import annotations

import pytest

from recops.data.sources.synthetic import SyntheticSource
from recops.features.build import build_split
from recops.features.dataset import SplitData
from recops.features.split import TimeSplit
from recops.models.ease import EASEModel
from recops.models.recommender import Recommender

WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}


@pytest.fixture(scope="session")
def world_split() -> SplitData:
    raw = SyntheticSource(n_users=900, n_items=250, n_events=25_000).load()
    return build_split(raw.events, raw.items, TimeSplit(0.2), WEIGHTS)


@pytest.fixture(scope="session")
def ease(world_split: SplitData) -> Recommender:
    model = EASEModel(regularization=200.0).fit(world_split.train)
    return Recommender.from_training(model, world_split.train)
