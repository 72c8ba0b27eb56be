"""The worker's state between cycles: a small JSON file, replaced atomically.

`trained_through_batch` is the last ingest batch the latest model saw; `checked_through_batch`
the last one a drift check covered. Both only move forward when a cycle's step fully succeeded,
so a crash or failure leaves them where they were and the next cycle redoes that work.
`running` is set while a cycle runs; finding it set at start-up (by a process that is gone)
means the previous cycle crashed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_HISTORY = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


@dataclass
class WorkerState:
    dataset: str | None = None
    trained_through_batch: int | None = None
    checked_through_batch: int | None = None
    last_trained_at: str | None = None
    cycles: int = 0
    running: dict[str, Any] | None = None
    last_cycle: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> WorkerState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        os.replace(tmp, path)

    def finish(self, record: dict[str, Any]) -> None:
        """Record a finished cycle (newest first in `history`)."""
        self.running = None
        self.last_cycle = record
        self.history = [record, *self.history][:MAX_HISTORY]

    def last_trained(self) -> datetime | None:
        return (
            None if self.last_trained_at is None else datetime.fromisoformat(self.last_trained_at)
        )
