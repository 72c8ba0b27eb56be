"""Turn user-facing errors into one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from recops.console import console, escape
from recops.errors import RecopsError


@contextmanager
def exit_on_error() -> Iterator[None]:
    try:
        yield
    except RecopsError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
