"""Logging and progress output shared by the CLI and the pipeline stages."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler

console = Console(stderr=True)
log = logging.getLogger("recops")


def setup_logging(level: str | int | None = None) -> None:
    """Rich log lines for `recops.*` (level from $RECOPS_LOG_LEVEL, default INFO)."""
    level = level or os.environ.get("RECOPS_LOG_LEVEL", "INFO")
    root = logging.getLogger("recops")
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # Hydra's logging configs (dictConfig) disable every logger that existed before them,
    # which includes our module-level loggers: switch them back on.
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("recops") and isinstance(logger, logging.Logger):
            logger.disabled = False
    for noisy in ("alembic", "mlflow.store", "mlflow.tracking", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def step(description: str) -> Iterator[None]:
    """A spinner while a long step runs, then a log line with its duration."""
    start = time.perf_counter()
    with console.status(f"[bold]{description}…"):
        yield
    log.info("%s done in %.1f s", description, time.perf_counter() - start)
