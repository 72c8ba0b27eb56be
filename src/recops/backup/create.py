"""`recops backup create`: a consistent copy of a running project.

- DuckDB store: copied through DuckDB itself (`COPY FROM DATABASE` from a read-only attach),
  so the copy is a committed state; while a worker holds the store the copy waits for it
  (`backup.store_wait_s`).
- MLflow backend: SQLite's online backup API (a consistent copy while the service and the
  worker read and write it); a PostgreSQL backend is dumped with `pg_dump --format=custom`.
  The registry lock is held meanwhile, with the artifacts and `reports/` (the registry audit),
  so no alias moves between the database copy and the audit copy.
- Artifacts: the local artifact folder next to a SQLite store (a tracking server's artifact
  store, e.g. S3, is not copied: back the bucket up with its own versioning).
- The GDPR salt and erasure list, the worker's state, the project's config and service files.
Everything lands in `files/` (project-relative paths) with a checksummed manifest, written
under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.backup.manifest import FILES, MANIFEST, Manifest
from recops.backup.settings import BackupSettings
from recops.config import find_project_root, shared_state_root
from recops.console import progress, step
from recops.data.store import copy_database_into
from recops.errors import RecopsError
from recops.registry.lock import make_lock
from recops.registry.settings import RegistrySettings
from recops.tracking.store import ARTIFACT_DIR, configure_tracking

PREFIX = "recops-backup-"
REGISTRY_EXPORT = "registry.json"


class BackupError(RecopsError):
    """A backup cannot be made, verified or restored."""


def rel(path: Path, root: Path) -> str:
    """Where a file goes under `files/`: its project-relative path (outside files: by name
    under `external/`)."""
    return (
        path.relative_to(root).as_posix() if path.is_relative_to(root) else f"external/{path.name}"
    )


# ------------------------------------------------------------------ components


def copy_duckdb(source: Path, target: Path, wait_s: float) -> None:
    """A committed copy of the store, waiting while another process holds it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        con = duckdb.connect(str(target))
        try:
            copy_database_into(con, source)
            return
        except duckdb.IOException as exc:
            if time.monotonic() > deadline:
                msg = f"{source}: the store stayed locked for {wait_s:.0f} s: {exc}"
                raise BackupError(msg) from exc
        finally:
            con.close()
        target.unlink(missing_ok=True)
        time.sleep(0.5)


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()


def copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: consistent while other processes write."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def dump_postgres(uri: str, target: Path) -> None:
    """`pg_dump --format=custom` of the MLflow database (restore with `pg_restore`)."""
    plain = "postgresql://" + uri.split("://", 1)[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["pg_dump", "--format=custom", f"--file={target}", plain],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump of the MLflow database failed: {done.stderr.strip()}")


def copy_tree(source: Path, target: Path, what: str) -> int:
    files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
    with progress(f"copying {what}", len(files), "files") as bar:
        for path in files:
            twin = target / path.relative_to(source)
            twin.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, twin)
            bar.advance(1)
    return len(files)


def registry_state(client: MlflowClient, name: str) -> dict[str, Any]:
    """Aliases, champion history and every version's tags (readable without MLflow)."""
    from recops.registry.history import read_history
    from recops.registry.versions import alias_map, all_versions

    try:
        aliases = alias_map(client, name)
    except RecopsError:
        return {"model": name, "aliases": {}, "history": [], "versions": []}
    versions = [
        {"version": str(v.version), "run_id": v.run_id, "source": v.source, "tags": v.tags}
        for v in all_versions(client, name)
    ]
    history = read_history(client, name)
    return {"model": name, "aliases": aliases, "history": history, "versions": versions}


@contextmanager
def registry_locked(client: MlflowClient, uri: str, settings: RegistrySettings) -> Iterator[None]:
    lock = make_lock(client, uri, settings.model_name, "backup", settings.lock_ttl_s)
    lock.acquire(settings.lock_timeout_s)
    try:
        yield
    finally:
        lock.release()


# ------------------------------------------------------------------ the backup


def create_backup(cfg: DictConfig, to: Path | None = None, keep: int | None = None) -> Path:
    root = find_project_root()
    s = BackupSettings.from_config(cfg, root)
    folder = to or s.dir
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{PREFIX}{stamp}"
    work = folder / f".{target.name}.partial"
    files = work / FILES
    files.mkdir(parents=True)
    try:
        manifest = _take(cfg, s, files)
        manifest.record_tree(files)
        manifest.write(work)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    retain(folder, s.keep if keep is None else keep)
    return target


def _take(cfg: DictConfig, s: BackupSettings, files: Path) -> Manifest:
    import json

    state_root = shared_state_root(s.root)
    uri = configure_tracking(s.root)
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        source_root=str(state_root),
        tracking_uri=uri,
    )
    if s.duckdb.exists():
        with step("copying the DuckDB store"):
            copy_duckdb(s.duckdb, files / rel(s.duckdb, s.root), s.store_wait_s)
        manifest.components["duckdb"] = rel(s.duckdb, s.root)
    client = MlflowClient(uri)
    reg = RegistrySettings.from_config(cfg, s.root)
    with registry_locked(client, uri, reg):
        db = sqlite_path(uri)
        if db is not None and db.exists():
            with step("copying the MLflow database (SQLite backup API)"):
                copy_sqlite(db, files / rel(db, state_root))
            manifest.components["mlflow_db"] = rel(db, state_root)
            artifacts = db.parent / ARTIFACT_DIR
            copy_tree(artifacts, files / rel(artifacts, state_root), "MLflow artifacts")
            manifest.components["mlflow_artifacts"] = rel(artifacts, state_root)
        elif uri.startswith("postgresql"):
            with step("dumping the MLflow database (pg_dump)"):
                dump_postgres(uri, files / "mlflow.pgdump")
            manifest.components["mlflow_db"] = "mlflow.pgdump"
            manifest.notes.append("artifacts live in the tracking server's store: not copied")
        else:
            manifest.notes.append(f"tracking server {uri}: back it up where it runs")
        state = registry_state(client, reg.model_name)
        (files / REGISTRY_EXPORT).write_text(json.dumps(state, indent=2, default=str) + "\n")
        manifest.champion = _champion(state, reg.champion_alias)
        copy_tree(s.reports_dir, files / rel(s.reports_dir, s.root), "reports")
        manifest.components["reports"] = rel(s.reports_dir, s.root)
    for path in (*s.state_files, *(s.root / p for p in s.project_files)):
        if path.is_dir():
            copy_tree(path, files / rel(path, s.root), rel(path, s.root))
        elif path.is_file():
            (files / rel(path, s.root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, files / rel(path, s.root))
    return manifest


def _champion(state: dict[str, Any], alias: str) -> dict[str, Any] | None:
    version = state["aliases"].get(alias)
    return (
        None if version is None else {"model": state["model"], "alias": alias, "version": version}
    )


def backups_in(folder: Path) -> list[Path]:
    """Complete backups in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: p.name)


def retain(folder: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest `keep` backups; returns what was deleted."""
    if keep is None:
        return []
    if keep < 1:
        raise BackupError(f"--keep must be at least 1, got {keep}")
    old = backups_in(folder)[:-keep]
    for path in old:
        shutil.rmtree(path)
    return old
