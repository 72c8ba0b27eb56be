"""The contract every data source fulfils: load raw events (and optionally items) from somewhere.

A source hands ingestion either everything at once (`load`, a `RawData`) or, when it can,
its events as bounded chunks (`stream`, a `RawStream`): that is what keeps the memory of a
20M-100M-row ingest bounded by `data.ingest.chunk_rows` instead of by the file size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@dataclass
class RawStream:
    """A source's events as chunks of at most `chunk_rows` rows (columns as in `RawData`).

    `chunks()` starts a new pass over the source each time it is called (the ingest makes a
    second pass only to quote rows that repeat a row of an earlier chunk). `n_rows` is the
    total when known up front (for the progress ETA); `label` is the short name log lines use.
    """

    chunks: Callable[[], Iterator[pd.DataFrame]]
    items: pd.DataFrame | None
    origin: str
    content_hash: str
    n_rows: int | None
    label: str


class Source(Protocol):
    """Anything Hydra can instantiate from `data.source` that yields a `RawData`."""

    name: str

    def load(self) -> RawData: ...


@runtime_checkable
class StreamingSource(Protocol):
    """A source that can also hand out its events in bounded chunks."""

    name: str

    def load(self) -> RawData: ...

    def stream(self, chunk_rows: int) -> RawStream: ...


def slices(frame: pd.DataFrame, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Consecutive row slices of `frame` (views, no copies)."""
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start : start + chunk_rows]


def stream_of(source: Source, chunk_rows: int) -> RawStream:
    """The source's own stream when it has one, else its loaded frame in slices."""
    if isinstance(source, StreamingSource):
        return source.stream(chunk_rows)
    raw = source.load()
    return RawStream(
        chunks=lambda: slices(raw.events, chunk_rows),
        items=raw.items,
        origin=raw.origin,
        content_hash=raw.content_hash,
        n_rows=len(raw.events),
        label=source.name,
    )
