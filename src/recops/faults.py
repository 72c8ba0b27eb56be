"""Crash-test points: `$RECOPS_PAUSE_AT=<name>[,<name>...]` makes the process stop at the named
point (it writes `$RECOPS_PAUSE_FILE`, if set, and sleeps), so a test can `kill -9` it exactly
there. Unset (always, outside tests) a pause point does nothing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PAUSE_ENV = "RECOPS_PAUSE_AT"
PAUSE_FILE_ENV = "RECOPS_PAUSE_FILE"
_PAUSE_SECONDS = 600.0


def pause_point(name: str) -> None:
    """Block here if `$RECOPS_PAUSE_AT` names this point."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or name not in wanted.split(","):
        return
    print(f"recops: paused at {name} (pid {os.getpid()})", file=sys.stderr, flush=True)
    if marker := os.environ.get(PAUSE_FILE_ENV):
        Path(marker).write_text(f"{name} {os.getpid()}\n")
    time.sleep(_PAUSE_SECONDS)
