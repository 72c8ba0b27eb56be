"""A backup's manifest: what it holds (project-relative paths under `files/`), each file's
sha256 and size, and what it was taken from (so a restore can re-point MLflow's artifact
locations at the restored folder)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recops.data.hashing import file_sha256

MANIFEST = "manifest.json"
FILES = "files"
FORMAT_VERSION = 1


@dataclass
class Manifest:
    created_at: str
    source_root: str
    tracking_uri: str
    # component -> project-relative path (or a note when it was not copied)
    components: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    champion: dict[str, Any] | None = None
    # project-relative path -> {"sha256": ..., "bytes": ...}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def record_tree(self, files_dir: Path) -> None:
        """Checksum every file under `files_dir` (the backup's `files/`)."""
        self.files = {}
        for path in sorted(p for p in files_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(files_dir).as_posix()
            self.files[rel] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}

    def write(self, backup: Path) -> None:
        tmp = backup / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, backup / MANIFEST)

    @classmethod
    def read(cls, backup: Path) -> Manifest:
        data = json.loads((backup / MANIFEST).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
