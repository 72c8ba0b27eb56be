"""Registered model versions and one user: which were trained with their data, and redaction.

Each version's logged model is downloaded, its saved recommender checked for the user; a
version holding them is rewritten without them (id map, model rows, MLflow's input examples)
and uploaded over the logged model's artifacts, then tagged. Whether that is enough depends on
the model (`RecModel.erasure`): "redact" models serve everyone else exactly as before; for
"retrain" models the shared item-item parameters still carry what they learned from the user,
so the version is tagged for a retrain (see `recops.gdpr.retrain`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.console import progress
from recops.gdpr import files
from recops.models.recommender import Recommender
from recops.registry.versions import alias_map, all_versions
from recops.tracking.model_files import CHECKSUM_TAG, FileManifest, file_checksums

ERASED_TAG = "recops.gdpr.erased"  # value: "<when> <n> user(s) removed (<erasure>)"
RETRAIN_TAG = "recops.gdpr.retrain"  # value: why the version must be retrained
REDACT, RETRAIN = "redact", "retrain"


@dataclass
class VersionHit:
    """A registered version trained with the user's data."""

    version: str
    run_id: str | None
    model_type: str
    erasure: str
    aliases: list[str] = field(default_factory=list)
    interactions: int = 0
    redacted: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def downloaded(version: ModelVersion) -> Iterator[Path]:
    """The version's logged model in a temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix="recops-gdpr-"))
    try:
        yield Path(mlflow.artifacts.download_artifacts(str(version.source), dst_path=str(tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recommender_folders(model_dir: Path) -> list[Path]:
    return sorted(p.parent for p in model_dir.rglob(files.RECOMMENDER_MARK))


def _hit(version: ModelVersion, rec: Recommender, user_id: str, aliases: list[str]) -> VersionHit:
    idx = int(rec.users.lookup([user_id])[0])
    seen = rec.model.seen
    return VersionHit(
        version=str(version.version),
        run_id=version.run_id,
        model_type=rec.model_type,
        erasure=type(rec.model).erasure,
        aliases=aliases,
        interactions=int(seen.indptr[idx + 1] - seen.indptr[idx]),
    )


def scan_versions(
    client: MlflowClient, name: str, user_id: str, redact: bool = False
) -> tuple[list[VersionHit], list[str]]:
    """Versions holding the user (redacted when `redact`), and versions that could not be
    read (their artifacts are gone: nothing of the user is left there either)."""
    try:
        by_version: dict[str, list[str]] = {}
        for alias, number in alias_map(client, name).items():
            by_version.setdefault(number, []).append(alias)
    except Exception:  # no registered model: nothing to scan
        return [], []
    hits, unreadable = [], []
    versions = all_versions(client, name)
    with progress(f"checking the versions of {name}", len(versions), "versions") as bar:
        for version in versions:
            bar.advance(1)
            try:
                with downloaded(version) as folder:
                    hit = _check(client, version, folder, user_id, by_version, redact)
            except (MlflowException, OSError) as exc:
                unreadable.append(f"v{version.version}: {exc}")
                continue
            if hit is not None:
                hits.append(hit)
    return hits, unreadable


def _check(
    client: MlflowClient,
    version: ModelVersion,
    folder: Path,
    user_id: str,
    aliases: dict[str, list[str]],
    redact: bool,
) -> VersionHit | None:
    hit = None
    for rec_dir in recommender_folders(folder):
        rec = Recommender.load(rec_dir)
        if user_id in rec.users:
            hit = _hit(version, rec, user_id, sorted(aliases.get(str(version.version), [])))
    if hit is None or not redact:
        return hit
    for kind, path in files.targets([folder]):
        touched = files.erase(kind, path, user_id, ())
        if touched is not None:
            touched.path = str(Path(touched.path).relative_to(folder))
            hit.files.append(touched.to_dict())
    model_id = logged_model_id(version)
    if model_id is None:
        raise MlflowException(f"v{version.version} has no logged model to rewrite")
    client.log_model_artifacts(model_id, str(folder))
    _record_checksums(client, version, folder)
    hit.redacted = True
    return hit


def _record_checksums(client: MlflowClient, version: ModelVersion, folder: Path) -> None:
    """Fresh sha256 of the redacted recommender files, where the verified loader reads them
    (the version's tag, and the run's tag registration copied it from)."""
    tags = dict(version.tags or {})
    if CHECKSUM_TAG not in tags:
        return  # registered before checksums were recorded: nothing to keep in step
    label = f"{version.name} v{version.version}"
    recorded = FileManifest.from_tag(tags[CHECKSUM_TAG], label)
    fresh = FileManifest(recorded.path, file_checksums(folder / recorded.path)).to_tag()
    client.set_model_version_tag(version.name, str(version.version), CHECKSUM_TAG, fresh)
    if version.run_id:
        client.set_tag(version.run_id, CHECKSUM_TAG, fresh)


def logged_model_id(version: ModelVersion) -> str | None:
    """The LoggedModel behind a version (MLflow 3: `model_id`, or a `models:/m-<id>` source)."""
    if getattr(version, "model_id", None):
        return str(version.model_id)
    source = str(version.source or "")
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/")[0]
    return None


def tag_version(client: MlflowClient, name: str, hit: VersionHit, at: str, reason: str) -> None:
    value = f"{at} 1 user removed ({hit.erasure}): {reason}"
    client.set_model_version_tag(name, hit.version, ERASED_TAG, value)
    if hit.erasure == RETRAIN:
        why = f"{at}: item-item parameters learned from an erased user ({hit.model_type})"
        client.set_model_version_tag(name, hit.version, RETRAIN_TAG, why)
