"""The `backup` config section (`conf/backup/default.yaml`, the only home of its defaults)
and what a backup needs from other groups, with absolute paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from recops.config import resolve_path
from recops.settings import build_group


@dataclass(frozen=True)
class BackupSection:
    """`conf/backup/default.yaml` as written."""

    dir: Path
    keep: int | None
    store_wait_s: float
    project_files: tuple[str, ...]


@dataclass(frozen=True)
class BackupSettings(BackupSection):
    """The `backup` section with absolute paths and what a backup takes from other groups."""

    root: Path
    duckdb: Path
    reports_dir: Path
    state_files: tuple[Path, ...]  # GDPR folder, worker state

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path) -> BackupSettings:
        b = build_group(BackupSection, cfg, "backup")
        # gdpr and worker sit beside/above this layer: their two paths are read directly
        salt = resolve_path(str(cfg.gdpr.salt_file), root)
        return cls(
            root=root,
            dir=resolve_path(b.dir, root),
            keep=b.keep,
            store_wait_s=b.store_wait_s,
            project_files=b.project_files,
            duckdb=resolve_path(str(cfg.paths.duckdb), root),
            reports_dir=resolve_path(str(cfg.paths.reports_dir), root),
            state_files=(salt.parent, resolve_path(str(cfg.worker.work_dir), root) / "state.json"),
        )
