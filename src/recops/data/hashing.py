"""Deterministic content hash of Arrow record batches (a table streamed in any batch sizes),
and the sha256 of files (`file_sha256`).

Each column feeds its own sha256 streams with a canonical byte form of its values (string
lengths + UTF-8 bytes, int64 nanoseconds, float64 with one NaN pattern, and a validity mask
when there are nulls), so the result depends on the rows and their order only: not on batch
boundaries, Arrow buffer layout, parquet encoding or library versions. It runs at memory speed
(no per-row Python, no conversion to pandas objects).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_CANONICAL_NAN = np.float64("nan")
_READ_CHUNK = 1 << 20


def file_sha256(*paths: Path) -> str:
    """sha256 over the bytes of the given files, in order (streamed): the one file-hash
    helper (source content hashes, model checksums, backup manifests)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class ContentHasher:
    """``update`` with each record batch in order, then ``hexdigest``."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._streams: dict[str, list[Any]] = {
            name: [hashlib.sha256() for _ in range(3)] for name in schema.names
        }

    def update(self, batch: pa.RecordBatch) -> None:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            validity, values, extra = self._streams[name]
            if column.null_count:
                validity.update(np.asarray(column.is_valid(), dtype=np.uint8).tobytes())
            else:
                validity.update(np.ones(len(column), dtype=np.uint8).tobytes())
            _update_values(column, values, extra)

    def hexdigest(self) -> str:
        total = hashlib.sha256(str(self.schema).encode())
        for name in self.schema.names:
            total.update(name.encode() + b"\0")
            for stream in self._streams[name]:
                total.update(stream.digest())
        return total.hexdigest()


def _update_values(column: pa.Array, values: Any, extra: Any) -> None:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        _update_strings(column, values, extra)
    elif pa.types.is_timestamp(kind):
        ints = pc.fill_null(column.cast(pa.int64()), 0)
        values.update(np.asarray(ints, dtype=np.int64).tobytes())
    elif pa.types.is_floating(kind):
        floats = np.asarray(pc.fill_null(column.cast(pa.float64()), np.nan), dtype=np.float64)
        values.update(np.where(np.isnan(floats), _CANONICAL_NAN, floats).tobytes())
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        values.update(np.asarray(pc.fill_null(column.cast(pa.int64()), 0), np.int64).tobytes())
    else:  # rare types: hash their string form
        _update_strings(column.cast(pa.string()), values, extra)


def _update_strings(column: pa.Array, lengths: Any, data: Any) -> None:
    """Lengths and concatenated UTF-8 bytes go to separate streams (batch-split invariant)."""
    filled = pc.fill_null(column.cast(pa.large_string()), "")
    sizes = np.asarray(pc.binary_length(filled), dtype=np.int64)
    lengths.update(sizes.tobytes())
    offsets_buf, data_buf = filled.buffers()[1], filled.buffers()[2]
    if data_buf is None or not len(filled):
        return
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[
        filled.offset : filled.offset + len(filled) + 1
    ]
    data.update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
