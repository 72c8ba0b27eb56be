"""`recops backup verify` and `recops backup restore`.

Verify: every file of the manifest is there with its size and sha256, nothing unlisted was
added, the DuckDB copy opens and every table scans, the SQLite copy passes
`PRAGMA integrity_check`. Each problem names the file.

Restore: a verified backup's files into a new folder, then MLflow's stored artifact locations
(experiments, runs, logged models, model versions) re-pointed from the backed-up project's
artifact folder to the restored one, so the restored project serves from its own copy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb

from recops.backup.create import BackupError, copy_tree
from recops.backup.manifest import FILES, MANIFEST, Manifest
from recops.console import progress, step
from recops.data.hashing import file_sha256


def verify_backup(backup: Path) -> list[str]:
    """Problems found (empty: the backup is sound)."""
    if not (backup / MANIFEST).is_file():
        return [f"{backup}: no {MANIFEST} (not a recops backup, or an unfinished one)"]
    try:
        manifest = Manifest.read(backup)
    except (ValueError, TypeError) as exc:
        return [f"{backup / MANIFEST}: unreadable ({exc})"]
    files = backup / FILES
    problems = _checksums(manifest, files)
    listed = set(manifest.files)
    problems += [
        f"{FILES}/{p.relative_to(files).as_posix()}: not in the manifest"
        for p in sorted(files.rglob("*"))
        if p.is_file() and p.relative_to(files).as_posix() not in listed
    ]
    if db := manifest.components.get("duckdb"):
        problems += _duckdb_problems(files / db, f"{FILES}/{db}")
    mlflow_db = manifest.components.get("mlflow_db")
    if mlflow_db and mlflow_db.endswith(".db"):
        problems += _sqlite_problems(files / mlflow_db, f"{FILES}/{mlflow_db}")
    return problems


def _checksums(manifest: Manifest, files: Path) -> list[str]:
    problems = []
    with progress("checking checksums", len(manifest.files), "files") as bar:
        for name, expected in manifest.files.items():
            path = files / name
            if not path.is_file():
                problems.append(f"{FILES}/{name}: missing")
            elif path.stat().st_size != expected["bytes"]:
                problems.append(
                    f"{FILES}/{name}: {path.stat().st_size} bytes, expected {expected['bytes']}"
                )
            elif file_sha256(path) != expected["sha256"]:
                problems.append(f"{FILES}/{name}: checksum mismatch (corrupted)")
            bar.advance(1)
    return problems


def _duckdb_problems(path: Path, label: str) -> list[str]:
    if not path.is_file():
        return []
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
            for table in tables:  # a full scan: DuckDB checks each block's checksum
                con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t').fetchall()
        finally:
            con.close()
    except duckdb.Error as exc:
        return [f"{label}: DuckDB cannot read it ({exc})"]
    return []


def _sqlite_problems(path: Path, label: str) -> list[str]:
    if not path.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return [f"{label}: SQLite cannot read it ({exc})"]
    return [] if result == ["ok"] else [f"{label}: integrity_check: {'; '.join(result[:3])}"]


def restore_backup(backup: Path, into: Path) -> dict[str, Any]:
    """Rebuild a project in `into` (new or empty) from a verified backup."""
    with step(f"verifying {backup.name}"):
        problems = verify_backup(backup)
    if problems:
        raise BackupError(f"{backup} is not sound, nothing restored: {'; '.join(problems[:5])}")
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into} is not empty: restore into a new or empty folder")
    manifest = Manifest.read(backup)
    copy_tree(backup / FILES, into, "files")
    moved = 0
    mlflow_db = manifest.components.get("mlflow_db", "")
    artifacts = manifest.components.get("mlflow_artifacts")
    if mlflow_db.endswith(".db") and artifacts:
        old = str(Path(manifest.source_root) / artifacts)
        moved = repoint_artifacts(into / mlflow_db, old, str(into.resolve() / artifacts))
    return {
        "into": str(into),
        "files": len(manifest.files),
        "champion": manifest.champion,
        "artifact_locations_repointed": moved,
        "notes": manifest.notes,
    }


def repoint_artifacts(db: Path, old: str, new: str) -> int:
    """Replace the old artifact folder by the new one in every text column of the MLflow
    database (artifact locations, run artifact URIs, model version sources)."""
    con = sqlite3.connect(str(db))
    changed = 0
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = con.execute(f'PRAGMA table_info("{table}")').fetchall()
            for column in (c[1] for c in columns if "CHAR" in str(c[2]).upper() or c[2] == "TEXT"):
                cursor = con.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                )
                changed += cursor.rowcount
        con.commit()
    finally:
        con.close()
    return changed
