"""Window specs over a dataset's events: `last:14d`, `first:42d`, `2024-01-01..2024-02-01`, `all`.

`first:`/`last:` are relative to the dataset's first/last event (not to the wall clock, so a
check over historical data means the same thing whenever it runs); a date range is [start, end).
Durations take `d` (days), `h` (hours) or `w` (weeks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from recops.errors import ConfigError

_RELATIVE = re.compile(r"^(first|last):(\d+(?:\.\d+)?)([dhw])$")
_SECONDS = {"h": 3600.0, "d": 86400.0, "w": 604800.0}


@dataclass(frozen=True)
class Window:
    """A parsed spec; `bounds` turns it into [start, end) for a dataset's time range."""

    spec: str
    kind: str  # first | last | range | all
    length: pd.Timedelta | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def bounds(
        self, first_event: pd.Timestamp, last_event: pd.Timestamp
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) in the dataset's time; `end` is exclusive, so `last:` and `all` end
        one microsecond after the last event (the store compares at microsecond precision)."""
        after_last = last_event + pd.Timedelta(1, "us")
        if self.kind == "first" and self.length is not None:
            return first_event, first_event + self.length
        if self.kind == "last" and self.length is not None:
            return after_last - self.length, after_last
        if self.kind == "range" and self.start is not None and self.end is not None:
            return self.start, self.end
        return first_event, after_last


def is_window(spec: str) -> bool:
    """Whether `spec` reads as a window (anything else is taken as a path)."""
    try:
        parse_window(spec)
    except ConfigError:
        return False
    return True


def parse_window(spec: str) -> Window:
    text = spec.strip()
    if text == "all":
        return Window(text, "all")
    if match := _RELATIVE.match(text):
        kind, amount, unit = match.groups()
        length = pd.Timedelta(seconds=float(amount) * _SECONDS[unit])
        if length <= pd.Timedelta(0):
            raise ConfigError(f"window {spec!r}: the length must be positive")
        return Window(text, kind, length=length)
    if ".." in text:
        return _date_range(text)
    raise ConfigError(
        f"window {spec!r} is not one of last:<n>d, first:<n>d, <date>..<date>, all "
        "(and is not an existing file)"
    )


def _date_range(text: str) -> Window:
    left, right = (part.strip() for part in text.split("..", 1))
    try:
        start, end = _naive(pd.Timestamp(left)), _naive(pd.Timestamp(right))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"window {text!r}: {exc}") from exc
    if end <= start:
        raise ConfigError(f"window {text!r}: the end must be after the start")
    return Window(text, "range", start=start, end=end)


def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    """Event timestamps are naive UTC: convert aware stamps to that."""
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
