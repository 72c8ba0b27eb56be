"""Logging and progress output shared by the CLI and the pipeline stages.

On a terminal, log lines go through rich and long work shows a progress bar with an ETA; when
output is not a terminal (CI, `dvc repro > log`, a cron job) log lines are plain one-liners at
full width and long work logs a progress line every few seconds instead of a bar.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


def _width() -> int | None:
    """Terminal width on a terminal; otherwise `$COLUMNS` or 160 (rich's 80 cramps tables
    and wraps lines in CI logs and `dvc repro > log`)."""
    import sys

    if sys.stderr.isatty():
        return None
    try:
        return int(os.environ.get("COLUMNS", "160"))
    except ValueError:
        return 160


console = Console(stderr=True, width=_width())
log = logging.getLogger("recops")
_PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_HANDLER_MARK = "_recops_handler"

__all__ = ["Progress", "console", "escape", "progress", "setup_logging", "step"]


def setup_logging(level: str | int | None = None) -> None:
    """Log lines for `recops.*` (level from $RECOPS_LOG_LEVEL, default INFO): rich on a
    terminal, plain full-width lines otherwise (rich would wrap them at 80 columns)."""
    level = level or os.environ.get("RECOPS_LOG_LEVEL", "INFO")
    root = logging.getLogger("recops")
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        handler = _make_handler()
        setattr(handler, _HANDLER_MARK, True)
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


def _make_handler() -> logging.Handler:
    if console.is_terminal:
        # markup=False: user text (file names, column headers) is never read as rich markup.
        rich = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
        rich.setFormatter(logging.Formatter("%(message)s"))
        return rich
    plain = logging.StreamHandler(console.file)
    plain.setFormatter(logging.Formatter(_PLAIN_FORMAT))
    return plain


@contextmanager
def step(description: str) -> Iterator[None]:
    """A spinner while a step of unknown length runs, then a log line with its duration.

    Prefer `progress` when the amount of work is known: it gives an ETA.
    """
    start = time.perf_counter()
    if console.is_terminal:
        with console.status(f"[bold]{escape(description)}…"):
            yield
    else:
        log.info("%s…", description)
        yield
    log.info("%s done in %.1f s", description, time.perf_counter() - start)


class Progress:
    """Progress of work of known size: a bar with an ETA on a terminal, else a log line every
    `every_s` seconds (`done/total unit (pct), elapsed, ETA`). Ends with one summary line.

    >>> with progress("scoring users", total=n, unit="users") as bar:
    ...     for chunk in chunks:
    ...         bar.advance(len(chunk))
    """

    def __init__(
        self,
        description: str,
        total: int | float | None,
        unit: str = "",
        every_s: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.description = description
        self.total = float(total) if total else None
        self.unit = unit
        self.every_s = every_s
        self.done = 0.0
        self._log = logger or log
        self._start = 0.0
        self._last_log = 0.0
        self._bar: RichProgress | None = None
        self._task: int | None = None

    def __enter__(self) -> Progress:
        self._start = self._last_log = time.perf_counter()
        if console.is_terminal:
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(escape(self.description), total=self.total)
        return self

    def advance(self, n: int | float = 1) -> None:
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n)  # type: ignore[arg-type]
            return
        now = time.perf_counter()
        if now - self._last_log >= self.every_s:
            self._last_log = now
            self._log.info("%s: %s", self.description, self.status(now))

    def status(self, now: float | None = None) -> str:
        """`1,200/5,000 users (24%), 12 s elapsed, ETA 38 s`."""
        elapsed = (now or time.perf_counter()) - self._start
        done = f"{self.done:,.0f}"
        if not self.total:
            return f"{done} {self.unit}, {elapsed:.0f} s elapsed".replace("  ", " ")
        share = self.done / self.total
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        eta_text = f"ETA {eta:.0f} s" if eta == eta else "ETA -"
        return (
            f"{done}/{self.total:,.0f} {self.unit} ({share:.0%}), "
            f"{elapsed:.0f} s elapsed, {eta_text}"
        ).replace("  ", " ")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        if exc_type is None:
            elapsed = time.perf_counter() - self._start
            self._log.info(
                "%s done: %s %s in %.1f s",
                self.description,
                f"{self.done:,.0f}",
                self.unit,
                elapsed,
            )


def progress(
    description: str, total: int | float | None, unit: str = "", every_s: float = 10.0
) -> Progress:
    """See `Progress`."""
    return Progress(description, total, unit=unit, every_s=every_s)
