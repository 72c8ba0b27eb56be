"""A registry-wide lock around alias moves.

MLflow has no compare-and-set on aliases, so two processes promoting at once could both
"win". Every move takes this lock, then re-checks that the alias still points where it did
when the gates ran.

- SQLite (or file) store: an OS file lock (`filelock`) next to the database, with a sidecar
  `.owner` file saying who holds it. The OS releases it if the holder dies.
- Any other store (a tracking server, Postgres, ...): a registered-model tag `recops.lock`
  holding owner, token and expiry, written then re-read after a short settle time; a lock
  past its expiry (`registry.lock_ttl_s`) is considered abandoned.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import filelock
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.errors import RegistryError
from recops.registry.audit import current_actor, utc_now

log = logging.getLogger(__name__)

LOCK_TAG = "recops.lock"
LOCK_SUFFIX = ".registry.lock"


class RegistryLockedError(RegistryError):
    """Another process holds the registry lock."""


@dataclass(frozen=True)
class LockOwner:
    purpose: str
    actor: str = field(default_factory=current_actor)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    since: str = field(default_factory=utc_now)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    expires: float = 0.0

    def describe(self) -> str:
        return f"{self.actor}@{self.host} (pid {self.pid}: {self.purpose}) since {self.since}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockOwner | None:
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError):
            return None


class RegistryLock(Protocol):
    def acquire(self, timeout: float) -> None: ...

    def release(self) -> None: ...


class FileRegistryLock:
    """OS lock on `<db>.registry.lock`; `<db>.registry.lock.owner` names the holder."""

    def __init__(self, path: Path, purpose: str) -> None:
        self.path = path
        self.owner_path = path.with_name(path.name + ".owner")
        self.owner = LockOwner(purpose)
        self._lock = filelock.FileLock(str(path), thread_local=False)

    def acquire(self, timeout: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=max(timeout, 0.0), poll_interval=0.1)
        except filelock.Timeout:
            raise RegistryLockedError(
                f"registry is locked by {self._holder()}; waited {timeout:.0f} s, "
                "try again when it has finished"
            ) from None
        self.owner_path.write_text(self.owner.to_json(), encoding="utf-8")

    def release(self) -> None:
        try:
            self.owner_path.unlink(missing_ok=True)
        finally:
            self._lock.release()

    def _holder(self) -> str:
        try:
            owner = LockOwner.from_json(self.owner_path.read_text(encoding="utf-8"))
        except OSError:
            owner = None
        return owner.describe() if owner else f"another process (lock file {self.path})"


class TagRegistryLock:
    """Best-effort lock for remote stores: a registered-model tag written then re-read."""

    def __init__(
        self,
        client: MlflowClient,
        model_name: str,
        purpose: str,
        ttl_s: float,
        settle_s: float = 0.5,
        poll_s: float = 0.5,
    ) -> None:
        self.client, self.model_name = client, model_name
        self.ttl_s, self.settle_s, self.poll_s = ttl_s, settle_s, poll_s
        self.owner = LockOwner(purpose)

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            holder = self._holder()
            free = holder is None or holder.expires < time.time() or holder.token == self._token
            if free and self._try_write():
                time.sleep(self.settle_s)
                now = self._holder()
                if now is not None and now.token == self._token:
                    return
                continue
            if time.monotonic() >= deadline:
                holder = self._holder() or holder
                who = holder.describe() if holder else "a concurrent writer"
                raise RegistryLockedError(
                    f"registry is locked by {who} (tag {LOCK_TAG} on "
                    f"{self.model_name}); waited {timeout:.0f} s, try again when it has finished"
                )
            time.sleep(self.poll_s)

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder.token == self._token:
            self.client.delete_registered_model_tag(self.model_name, LOCK_TAG)

    @property
    def _token(self) -> str:
        return self.owner.token

    def _try_write(self) -> bool:
        """Write our tag; False when a concurrent writer's insert of the same tag won (a
        server on PostgreSQL refuses the second insert): the next pass sees that holder."""
        try:
            self._write()
        except MlflowException as exc:
            log.debug("lock tag write lost to a concurrent writer: %s", exc)
            return False
        return True

    def _write(self) -> None:
        owner = LockOwner(
            self.owner.purpose,
            since=utc_now(),
            token=self._token,
            expires=time.time() + self.ttl_s,
        )
        self.client.set_registered_model_tag(self.model_name, LOCK_TAG, owner.to_json())

    def _holder(self) -> LockOwner | None:
        try:
            tags = self.client.get_registered_model(self.model_name).tags
        except MlflowException:
            return None
        text = tags.get(LOCK_TAG)
        return LockOwner.from_json(text) if text else None


def local_lock_path(registry_uri: str) -> Path | None:
    """`<db>.registry.lock` for a SQLite (or file) store; None for anything remote."""
    if registry_uri.startswith("sqlite:///"):
        db = registry_uri.removeprefix("sqlite:///").split("?", 1)[0]
        db_path = Path(db if db.startswith("/") else os.path.abspath(db))
        return db_path.with_name(db_path.name + LOCK_SUFFIX)
    if registry_uri.startswith("file:") or "://" not in registry_uri:
        folder = Path(registry_uri.removeprefix("file://").removeprefix("file:"))
        return folder.resolve() / f"recops{LOCK_SUFFIX}"
    return None


def make_lock(
    client: MlflowClient, registry_uri: str, model_name: str, purpose: str, ttl_s: float
) -> RegistryLock:
    path = local_lock_path(registry_uri)
    if path is not None:
        return FileRegistryLock(path, purpose)
    return TagRegistryLock(client, model_name, purpose, ttl_s)
