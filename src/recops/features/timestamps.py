"""Timestamps as integers: what order, windows and recency computations work on."""

from __future__ import annotations

import numpy as np
import pandas as pd


def epoch_ns(stamps: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC, int64) of a datetime column, naive (= UTC) or
    tz-aware; integers, so no per-event float conversion."""
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
