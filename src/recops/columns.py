"""Canonical column names, used everywhere instead of bare strings (RecTools' `Columns` idea)."""

from __future__ import annotations

from typing import Final


class Columns:
    """Column names of the canonical events and items tables."""

    user: Final = "user_id"
    item: Final = "item_id"
    timestamp: Final = "timestamp"
    event_type: Final = "event_type"
    value: Final = "value"  # explicit rating, if the source has one
    weight: Final = "weight"  # per-event weight multiplier (default 1.0)
    dataset: Final = "dataset"
    batch: Final = "batch_id"

    # items
    title: Final = "title"
    category: Final = "category"
    brand: Final = "brand"
    price: Final = "price"
    tags: Final = "tags"  # "|"-separated tokens (genres, tags)

    # internal indices produced by features
    user_idx: Final = "user_idx"
    item_idx: Final = "item_idx"

    # recommendations
    score: Final = "score"
    rank: Final = "rank"

    # quarantine
    rule: Final = "rule"
    detail: Final = "detail"
    source_row: Final = "source_row"


EVENT_COLUMNS: Final = (
    Columns.user,
    Columns.item,
    Columns.timestamp,
    Columns.event_type,
    Columns.value,
    Columns.weight,
)
ITEM_COLUMNS: Final = (
    Columns.item,
    Columns.title,
    Columns.category,
    Columns.brand,
    Columns.price,
    Columns.tags,
)
