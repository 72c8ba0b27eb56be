"""The audit trail: who moved which alias from which version to which, when, why, and the
gate results. Each record is appended to a JSONL file (the system of record, append-only)
and summarised in registry tags (`recops.last_move` on the model and on the version)."""

from __future__ import annotations

import json
import os
import pwd
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

ACTOR_ENV = "RECOPS_ACTOR"
#: Who moved an alias that recops did not move (the MLflow UI, or any other client).
OUT_OF_BAND_ACTOR = "mlflow-ui/unknown"
LAST_MOVE_TAG = "recops.last_move"
FORCED_TAG = "recops.forced"


def os_user() -> str:
    """The OS account running the process (from the uid, not from environment variables)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def os_identity() -> str:
    """`user@host` of the process: what an audit record's `actor` is."""
    return f"{os_user()}@{socket.gethostname()}"


def actor_override() -> str | None:
    """`$RECOPS_ACTOR`: a name the caller claims (unchecked), recorded beside the OS identity."""
    return os.environ.get(ACTOR_ENV) or None


def current_who() -> str:
    """`user@host`, with the claimed `$RECOPS_ACTOR` beside it (for tags naming who did it)."""
    claimed = actor_override()
    return f"{os_identity()} (RECOPS_ACTOR={claimed})" if claimed else os_identity()


def current_actor() -> str:
    """A display name (locks, tags): `$RECOPS_ACTOR`, else the OS user."""
    return actor_override() or os_user()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class AuditRecord:
    """One move. `action`: register, promote, rollback, out_of_band, archive, restore, refused."""

    action: str
    model: str
    alias: str | None
    from_version: str | None
    to_version: str | None
    reason: str
    #: Who really ran it: OS user @ host. `actor_override` is `$RECOPS_ACTOR` (unchecked).
    actor: str = field(default_factory=os_identity)
    actor_override: str | None = field(default_factory=actor_override)
    at: str = field(default_factory=utc_now)
    forced: bool = False
    gates: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: `promote champion v1 -> v2 by alice (forced): why`."""
        move = f"{_v(self.from_version)} -> {_v(self.to_version)}"
        forced = " (forced)" if self.forced else ""
        target = f" {self.alias}" if self.alias else ""
        return f"{self.action}{target} {move} by {self.who}{forced}: {self.reason}"

    @property
    def who(self) -> str:
        """`user@host`, with the claimed `$RECOPS_ACTOR` beside it when one was given."""
        claimed = f" (RECOPS_ACTOR={self.actor_override})" if self.actor_override else ""
        return f"{self.actor}{claimed}"

    def tag_value(self) -> str:
        """One readable line for a registry tag (the JSONL has the full record)."""
        gates = " ".join(f"{g['name']}={'pass' if g['passed'] else 'FAIL'}" for g in self.gates)
        return f"{self.at} {self.summary()}" + (f" [gates: {gates}]" if gates else "")


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


class AuditLog:
    """Append-only JSONL file of `AuditRecord`s."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: AuditRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.to_dict(), sort_keys=True, default=str) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Records, oldest first (the last `limit` of them)."""
        if not self.path.exists():
            return []
        lines = [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        records = [json.loads(ln) for ln in lines]
        return records[-limit:] if limit else records


def write_audit(client: MlflowClient, log: AuditLog, record: AuditRecord) -> None:
    """The record in the JSONL log, then as tags on the model and on the version it moved
    to (or the version it concerns, e.g. an archived one)."""
    log.append(record)
    if record.action == "refused":
        return
    value = record.tag_value()
    client.set_registered_model_tag(record.model, LAST_MOVE_TAG, value)
    version = record.to_version or record.from_version  # archive: the archived version
    if version is None:
        return
    try:
        client.set_model_version_tag(record.model, version, LAST_MOVE_TAG, value)
        if record.forced:
            client.set_model_version_tag(
                record.model, version, FORCED_TAG, f"{record.at} {record.who}: {record.reason}"
            )
    except MlflowException:  # the version was deleted out of band: the JSONL has the record
        pass
