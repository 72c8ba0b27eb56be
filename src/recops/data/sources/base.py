"""The contract every data source fulfils: load raw events (and optionally items) from somewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd


@dataclass
class RawData:
    """What a source hands to ingestion, before validation and cleaning.

    `events` has the canonical columns Columns.user, item, timestamp, event_type, value, weight
    and source_row (1-based row number in the source, for quarantine reports).
    `items`, when the source has item metadata, has Columns.item, title, category, brand, price
    and tags ("|"-separated tokens).
    """

    events: pd.DataFrame
    items: pd.DataFrame | None
    origin: str  # human description: a file path, or "synthetic(n_users=..., seed=...)"
    content_hash: str  # sha256 hex of the source content (file bytes, or generator parameters)


class Source(Protocol):
    """Anything Hydra can instantiate from `data.source` that yields a `RawData`."""

    name: str

    def load(self) -> RawData: ...
