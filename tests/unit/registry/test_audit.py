"""Audit records: JSONL log, actor, registry tags."""

from __future__ import annotations

import json
import os
import pwd
import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from recops.registry.audit import (
    LAST_MOVE_TAG,
    AuditLog,
    AuditRecord,
    current_actor,
    write_audit,
)


def gates() -> list[dict[str, object]]:
    return [
        {"name": "loads", "passed": True, "detail": "ok"},
        {"name": "metric", "passed": False, "detail": "worse"},
    ]


def test_actor_is_the_os_identity_and_the_env_only_a_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOPS_ACTOR", "ci-bot")
    monkeypatch.setenv("USER", "mallory")  # environment variables do not make the identity
    monkeypatch.setenv("LOGNAME", "mallory")
    assert current_actor() == "ci-bot"
    record = AuditRecord("promote", "m", "champion", "1", "2", "why")
    user = pwd.getpwuid(os.getuid()).pw_name
    assert record.actor == f"{user}@{socket.gethostname()}" and "mallory" not in record.actor
    assert record.actor_override == "ci-bot"
    assert record.summary().endswith(f"by {record.actor} (RECOPS_ACTOR=ci-bot): why")
    monkeypatch.delenv("RECOPS_ACTOR")
    assert AuditRecord("promote", "m", "champion", "1", "2", "why").actor_override is None


def test_log_is_append_only_jsonl(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    first = AuditRecord("promote", "m", "champion", None, "1", "first", gates=gates())
    log.append(first)
    log.append(AuditRecord("rollback", "m", "champion", "2", "1", "back"))
    lines = log.path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["id"] == first.id
    assert [r["action"] for r in log.read()] == ["promote", "rollback"]
    assert log.read(limit=1)[0]["reason"] == "back"


def test_summary_and_tag_value() -> None:
    record = AuditRecord("promote", "m", "champion", "1", "2", "hotfix", actor="al", forced=True)
    record.gates = gates()
    assert record.summary() == "promote champion v1 -> v2 by al (forced): hotfix"
    assert record.tag_value().endswith("[gates: loads=pass metric=FAIL]")


def test_write_audit_tags_model_and_version(
    tmp_path: Path, registry_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client = MlflowClient()
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path))
    log = AuditLog(tmp_path / "audit.jsonl")
    record = AuditRecord("promote", "m", "champion", None, "1", "why", forced=True)
    write_audit(client, log, record)
    assert client.get_registered_model("m").tags[LAST_MOVE_TAG] == record.tag_value()
    tags = client.get_model_version("m", "1").tags
    assert tags[LAST_MOVE_TAG] == record.tag_value() and "why" in tags["recops.forced"]
    write_audit(client, log, AuditRecord("refused", "m", "champion", None, "1", "no"))
    assert client.get_registered_model("m").tags[LAST_MOVE_TAG] == record.tag_value()
    assert len(log.read()) == 2
