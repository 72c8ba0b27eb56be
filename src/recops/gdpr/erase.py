"""`recops gdpr delete-user`: erase one user from every store RecOps writes.

Order: the DuckDB store (rows deleted, then the file rebuilt so no deleted bytes remain),
derived files (snapshots, features, saved models, caches, worker and incoming folders, the
precomputed table, the BentoML store, local MLflow artifacts), registered versions (redacted
and tagged; a retrain requested where redaction is not exact), then the erasure list the live
service reads, and an audit record holding only the salted hash of the id. Running it again
finds nothing left and changes nothing (it is recorded as a repeat).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import find_project_root
from recops.console import progress
from recops.data.store import EventStore
from recops.errors import RecopsError
from recops.gdpr import files, retrain
from recops.gdpr.identity import ErasureList, ensure_salt, user_hash
from recops.gdpr.settings import GdprSettings
from recops.gdpr.versions import RETRAIN, VersionHit, scan_versions, tag_version
from recops.registry.audit import current_actor, utc_now
from recops.tracking.store import artifact_location_for, configure_tracking

log = logging.getLogger(__name__)


class UnknownUserError(RecopsError):
    """Nothing RecOps holds mentions the user."""


@dataclass
class ErasureReport:
    user_hash: str
    at: str
    actor: str
    reason: str
    repeat: bool
    store: dict[str, int]
    files: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    unreadable_versions: list[str]
    retrain: dict[str, Any] | None
    remaining: list[str] = field(default_factory=list)
    action: str = "erasure"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def touched(self) -> bool:
        return bool(sum(self.store.values()) or self.files or self.versions)


def local_artifacts(tracking_uri: str) -> Path | None:
    """The artifact folder next to a local SQLite store (None for a tracking server)."""
    location = artifact_location_for(tracking_uri)
    return Path(location.removeprefix("file://")) if location else None


def owned_roots(s: GdprSettings, tracking_uri: str) -> list[Path]:
    artifacts = local_artifacts(tracking_uri)
    return [*s.derived, *([artifacts] if artifacts else [])]


def erase_store(path: Path, user_id: str) -> dict[str, int]:
    if not path.exists():
        return {"events": 0, "quarantine": 0}
    with EventStore(path) as store:
        counts = store.erase_user(user_id)
        if sum(counts.values()):
            store.compact()  # deleted rows' bytes leave the file only when it is rewritten
    return counts


def erase_files(roots: list[Path], user_id: str, user_column: str) -> list[dict[str, Any]]:
    found = list(files.targets(roots))
    touched = []
    with progress("rewriting derived files", len(found), "files") as bar:
        for kind, path in found:
            result = files.erase(kind, path, user_id, (user_column,))
            if result is not None:
                touched.append(result.to_dict())
            bar.advance(1)
    return touched


def delete_user(
    cfg: DictConfig, user_id: str, reason: str, root: Path | None = None
) -> ErasureReport:
    """Erase `user_id` everywhere; UnknownUserError if nothing held them and they were never
    erased before."""
    root = root or find_project_root()
    s = GdprSettings.from_config(cfg, root)
    digest = user_hash(ensure_salt(s.salt_file), user_id)
    erasures = ErasureList(s.erasure_list)
    before = digest in erasures.hashes()
    uri = configure_tracking(root)
    store = erase_store(s.duckdb, user_id)
    # versions before files: the local artifact folder is among the files
    hits, unreadable = scan_versions(MlflowClient(uri), s.model_name, user_id, redact=True)
    touched = erase_files(owned_roots(s, uri), user_id, s.user_column)
    report = ErasureReport(
        user_hash=digest,
        at=utc_now(),
        actor=current_actor(),
        reason=reason,
        repeat=before,
        store=store,
        files=[_relative(t, root) for t in touched],
        versions=[h.to_dict() for h in hits],
        unreadable_versions=unreadable,
        retrain=None,
    )
    if not report.touched and not before:
        raise UnknownUserError(
            f"no data about user {user_id!r}: not in {s.duckdb.name}, the derived files or "
            f"the versions of {s.model_name}; nothing was erased (check the id)"
        )
    for hit in hits:
        tag_version(MlflowClient(uri), s.model_name, hit, report.at, reason)
    report.retrain = _request_retrain(s, hits, report.at)
    erasures.add(digest)
    report.remaining = [
        str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
        for p in files.files_holding(residual_roots(s, uri), user_id)
    ]
    append_audit(s.audit_log, report.to_dict())
    return report


def residual_roots(s: GdprSettings, tracking_uri: str) -> list[Path]:
    """Everything scanned for copies left after the erasure (the DVC cache among them)."""
    extra = [s.duckdb, s.root / ".dvc" / "cache"]
    return [p for p in [*owned_roots(s, tracking_uri), *extra] if p.exists()]


def _request_retrain(s: GdprSettings, hits: list[VersionHit], at: str) -> dict[str, Any] | None:
    needing = [h.version for h in hits if h.erasure == RETRAIN]
    if not needing:
        return None
    return retrain.request(s.retrain_request, at, needing).to_dict()


def _relative(touched: dict[str, Any], root: Path) -> dict[str, Any]:
    path = Path(touched["path"])
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    return {**touched, "path": str(shown)}


def append_audit(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, appended and synced (the erasure audit is append-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
