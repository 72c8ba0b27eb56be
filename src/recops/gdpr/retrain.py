"""Retrains requested by erasures: a small JSON file the worker reads at each cycle.

`delete-user` writes a request when a registered version could not be redacted exactly
(`RecModel.erasure == "retrain"`); the worker's next cycle retrains in full on the store (which
no longer holds the user) and clears it. `--retrain now` runs that cycle at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RetrainRequest:
    requested_at: str
    reason: str
    versions: list[str] = field(default_factory=list)
    erasures: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pending(path: Path) -> RetrainRequest | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return RetrainRequest(**{k: v for k, v in data.items() if k in RetrainRequest.__annotations__})


def request(path: Path, at: str, versions: list[str]) -> RetrainRequest:
    """Add to (or start) the pending request; returns it."""
    current = pending(path)
    if current is None:
        current = RetrainRequest(at, "", [], 0)
    current.versions = sorted(set(current.versions) | set(versions), key=int)
    current.erasures += 1
    current.reason = (
        f"GDPR erasure: {current.erasures} user(s) erased since {current.requested_at}; "
        f"v{', v'.join(current.versions)} cannot be redacted exactly"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(current.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return current


def done(path: Path, request_seen: RetrainRequest) -> None:
    """Clear the request a finished retrain honoured (unless a newer erasure changed it)."""
    current = pending(path)
    if current is not None and current.to_dict() == request_seen.to_dict():
        path.unlink(missing_ok=True)
