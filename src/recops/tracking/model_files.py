"""A registered recommender as plain files with recorded checksums - loaded without running
anything from the artifact store.

The logged MLflow model holds the saved `Recommender` folder (npz / parquet / json) under
`artifacts/<folder>`. At logging time the sha256 of every file of that folder is computed from
the local copy just written and recorded as the run tag `recops.files_sha256`; registration
copies it to the model version's tags. RecOps's own loading (gates, serving, drift, worker,
rollback) downloads exactly the recorded files, checks every checksum and only then reads them
with the installed `recops` code: no pickle, no code file from the store is executed. A file
whose content differs (truncated, replaced) fails with `ArtifactIntegrityError` naming it.

Formats: numpy arrays are read with `allow_pickle=False` (numpy's and scipy's default), parquet
with pyarrow, json with `json`; no model's saved state is a pickle. A model class is imported
from its `_target_` in `model/model.json` only after that file's checksum matched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from recops.data.hashing import file_sha256
from recops.errors import ArtifactIntegrityError
from recops.models.recommender import Recommender

#: Run and model-version tag holding the manifest (JSON: path of the folder in the logged
#: model, and {relative file path: sha256}).
CHECKSUM_TAG = "recops.files_sha256"


@dataclass(frozen=True)
class FileManifest:
    """Where the recommender folder is inside the logged model, and its files' sha256."""

    path: str
    files: dict[str, str]

    def to_tag(self) -> str:
        return json.dumps({"path": self.path, "files": self.files}, sort_keys=True)

    @classmethod
    def from_tag(cls, value: str, where: str) -> FileManifest:
        try:
            data = json.loads(value)
            path, files = str(data["path"]), {str(k): str(v) for k, v in data["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"{where}: tag {CHECKSUM_TAG} is unreadable ({exc})"
            raise ArtifactIntegrityError(problem) from exc
        for name in (path, *files):
            _check_relative(name, where)
        return cls(path, files)


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, keyed by its POSIX path relative to it."""
    return {
        p.relative_to(folder).as_posix(): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def manifest_for(folder: Path) -> FileManifest:
    """The manifest of a saved recommender folder as MLflow logs it (`artifacts/<name>`)."""
    return FileManifest(f"artifacts/{folder.name}", file_checksums(folder))


def verify_files(folder: Path, expected: Mapping[str, str], label: str) -> None:
    """Every file of `expected` exists under `folder` with that sha256, and no other file
    does (an extra file could be picked up by a loader looking for optional state)."""
    for name, digest in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"{label}: file {name} is missing")
        actual = file_sha256(path)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"{label}: checksum of {name} differs from the one recorded at registration "
                f"(sha256 {actual[:12]}..., recorded {digest[:12]}...; "
                f"{path.stat().st_size} bytes): the file was changed or truncated"
            )
    extra = sorted(set(file_checksums(folder)) - set(expected))
    if extra:
        raise ArtifactIntegrityError(f"{label}: unexpected file(s) {', '.join(extra)}")


def recorded_manifest(client: Any, name: str, version: str) -> FileManifest:
    """The manifest recorded in the version's tags."""
    tags = dict(client.get_model_version(name, version).tags or {})
    label = f"{name} v{version}"
    if CHECKSUM_TAG not in tags:
        raise ArtifactIntegrityError(
            f"{label} has no recorded file checksums (tag {CHECKSUM_TAG}): it was registered "
            "before RecOps recorded them, or not by RecOps; re-train and register it to use it"
        )
    return FileManifest.from_tag(tags[CHECKSUM_TAG], label)


def fetch_verified(client: Any, name: str, version: str, dst: Path) -> Path:
    """Download the version's recorded recommender files (and only those) into `dst` and
    verify them; returns the folder holding them."""
    manifest = recorded_manifest(client, name, version)
    root = client.get_model_version_download_uri(name, version).rstrip("/")
    folder = dst / "recommender"
    for rel in sorted(manifest.files):
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _download_one(f"{root}/{manifest.path}/{rel}", target, f"{name} v{version}", rel)
    verify_files(folder, manifest.files, f"{name} v{version}")
    return folder


def load_registered_recommender(client: Any, name: str, version: str) -> Recommender:
    """The version's `Recommender`, read from checksum-verified plain files."""
    tmp = Path(tempfile.mkdtemp(prefix="recops-model-"))
    try:
        folder = fetch_verified(client, name, version, tmp)
        return Recommender.load(folder)  # everything is read into memory
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_one(uri: str, target: Path, label: str, rel: str) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".dl-") as tmp:
        try:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (MlflowException, OSError) as exc:
            problem = f"{label}: file {rel} cannot be downloaded ({exc})"
            raise ArtifactIntegrityError(problem) from exc
        if not got.is_file():
            raise ArtifactIntegrityError(f"{label}: {rel} is not a file in the artifact store")
        os.replace(got, target)


def _check_relative(name: str, where: str) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not name:
        raise ArtifactIntegrityError(f"{where}: bad path {name!r} in tag {CHECKSUM_TAG}")
