"""The registry lock: one holder at a time, the loser is told who holds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.registry.lock import (
    LOCK_TAG,
    FileRegistryLock,
    RegistryLockedError,
    TagRegistryLock,
    local_lock_path,
)


def test_lock_path_next_to_sqlite_db_and_none_for_servers(tmp_path: Path) -> None:
    assert (
        local_lock_path(f"sqlite:///{tmp_path}/mlflow.db") == tmp_path / "mlflow.db.registry.lock"
    )
    assert local_lock_path("http://mlflow:5000") is None
    assert local_lock_path("postgresql://u@h/db") is None


def test_file_lock_excludes_a_second_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOPS_ACTOR", "alice")
    path = tmp_path / "mlflow.db.registry.lock"
    first = FileRegistryLock(path, "promote v3 to champion")
    first.acquire(timeout=1)
    second = FileRegistryLock(path, "rollback")
    with pytest.raises(RegistryLockedError, match=r"locked by alice@.*promote v3 to champion"):
        second.acquire(timeout=0.3)
    first.release()
    second.acquire(timeout=1)
    second.release()


def test_tag_lock_for_remote_stores(registry_store: str) -> None:
    client = MlflowClient()
    client.create_registered_model("m")
    first = TagRegistryLock(client, "m", "promote v2", ttl_s=60, settle_s=0.01, poll_s=0.05)
    first.acquire(timeout=1)
    assert "promote v2" in client.get_registered_model("m").tags[LOCK_TAG]
    second = TagRegistryLock(client, "m", "rollback", ttl_s=60, settle_s=0.01, poll_s=0.05)
    with pytest.raises(RegistryLockedError, match="promote v2"):
        second.acquire(timeout=0.2)
    first.release()
    assert LOCK_TAG not in client.get_registered_model("m").tags
    second.acquire(timeout=1)
    second.release()


def test_expired_tag_lock_is_taken_over(registry_store: str) -> None:
    client = MlflowClient()
    client.create_registered_model("m")
    stale = TagRegistryLock(client, "m", "crashed", ttl_s=-1, settle_s=0.01)
    stale.acquire(timeout=1)  # written already expired: as if its holder died long ago
    fresh = TagRegistryLock(client, "m", "promote", ttl_s=60, settle_s=0.01)
    fresh.acquire(timeout=0.5)
    fresh.release()


class RacingClient(MlflowClient):
    """A client whose first tag write loses a race: another process's lock tag lands first
    and this insert fails, as PostgreSQL's `registered_model_tag_pk` unique violation does
    behind a team server (seen in the two-process promotion test)."""

    def __init__(self, rival: TagRegistryLock) -> None:
        super().__init__()
        self.rival, self.raced = rival, False

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        if not self.raced:
            self.raced = True
            self.rival._write()
            raise MlflowException(
                "BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates "
                'unique constraint "registered_model_tag_pk"'
            )
        super().set_registered_model_tag(name, key, value)


def test_a_tag_write_lost_to_a_concurrent_writer_is_a_clear_locked_error(
    registry_store: str,
) -> None:
    MlflowClient().create_registered_model("m")
    rival = TagRegistryLock(MlflowClient(), "m", "promote v3", ttl_s=60, settle_s=0.01)
    loser = TagRegistryLock(
        RacingClient(rival), "m", "promote v4", ttl_s=60, settle_s=0.01, poll_s=0.05
    )
    with pytest.raises(RegistryLockedError, match="promote v3"):
        loser.acquire(timeout=0.3)
    rival.release()
    loser.acquire(timeout=1)  # free again: the loser now gets it
    loser.release()
