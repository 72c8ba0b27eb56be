"""What the worker processes of one BentoML server share: a folder of small files.

BentoML runs `workers` separate processes behind one socket; a request reaches one of them.
So that `/stats` covers the whole server and `/admin/reload` or `/cache/clear` reach every
worker, each worker publishes its snapshot as `<kind>-<pid>.json` and polls `control.json`,
whose counters a worker bumps to ask all workers to act (within one sync interval).

The folder defaults to a sub-folder of BentoML's Prometheus multiprocess directory, which
BentoML creates empty for every server start and passes to all of that server's workers.
In a single process (tests, in-process use) there is nothing to share: no folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PROMETHEUS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SUBFOLDER = "recops-serving"
CONTROL = "control.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


class WorkerBoard:
    """Per-worker snapshots and shared command counters in `folder` (None: this process only)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.pid = os.getpid()
        self._local: dict[str, int] = {}
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_server(cls, configured: str | None = None) -> WorkerBoard:
        """The configured folder, else one inside BentoML's Prometheus folder, else none."""
        if configured:
            return cls(Path(configured))
        prometheus = os.environ.get(PROMETHEUS_DIR_ENV)
        if prometheus and Path(prometheus).is_dir():
            return cls(Path(prometheus) / SUBFOLDER)
        return cls(None)

    @property
    def shared(self) -> bool:
        return self.folder is not None

    # -- snapshots -------------------------------------------------------------------------
    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        if self.folder is None:
            return
        try:
            _write_atomic(self.folder / f"{kind}-{self.pid}.json", payload)
        except OSError as exc:  # sharing is best effort: never fail a request over it
            log.warning("could not publish %s snapshot: %s", kind, exc)

    def collect(self, kind: str, own: dict[str, Any]) -> list[dict[str, Any]]:
        """`own` (fresh) plus the last published snapshot of every other live worker."""
        out = [own]
        if self.folder is None:
            return out
        for path in sorted(self.folder.glob(f"{kind}-*.json")):
            pid_text = path.stem.rsplit("-", 1)[-1]
            if not pid_text.isdigit() or int(pid_text) == self.pid:
                continue
            if not _alive(int(pid_text)):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # being replaced right now: skip this round
        return out

    # -- commands --------------------------------------------------------------------------
    def bump(self, command: str) -> int:
        """Ask every worker to run `command` (the caller has done it itself already)."""
        if self.folder is None:
            self._local[command] = self._local.get(command, 0) + 1
            return self._local[command]
        with open(self.folder / "control.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                counters = self.commands()
                counters[command] = counters.get(command, 0) + 1
                _write_atomic(self.folder / CONTROL, counters)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return counters[command]

    def commands(self) -> dict[str, int]:
        """Current command counters (a worker acts when one moved past what it has seen)."""
        if self.folder is None:
            return dict(self._local)
        try:
            data = json.loads((self.folder / CONTROL).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()}
