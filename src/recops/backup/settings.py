"""The `backup` config section (`conf/backup/default.yaml`, the only home of its defaults)
and what a backup needs from other groups, with absolute paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from recops.config import resolve_path
from recops.settings import build_group, build_view


@dataclass(frozen=True)
class BackupSection:
    """`conf/backup/default.yaml` as written."""

    dir: Path
    keep: int | None
    store_wait_s: float
    project_files: tuple[str, ...]


@dataclass(frozen=True)
class GdprState:
    """The key of the `gdpr` section a backup needs (`recops.gdpr.settings.GdprSection` is in
    a sibling layer: this typed view of it is built by `recops.settings.build_view`)."""

    salt_file: Path


@dataclass(frozen=True)
class WorkerState:
    """The key of the `worker` section a backup needs (a view of the higher layer's
    `recops.worker.settings.WorkerSection`)."""

    work_dir: Path


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
        salt = resolve_path(build_view(GdprState, cfg, "gdpr").salt_file, root)
        work_dir = resolve_path(build_view(WorkerState, cfg, "worker").work_dir, root)
        return cls(
            root=root,
            dir=resolve_path(b.dir, root),
            keep=b.keep,
            store_wait_s=b.store_wait_s,
            project_files=b.project_files,
            duckdb=resolve_path(str(cfg.paths.duckdb), root),
            reports_dir=resolve_path(str(cfg.paths.reports_dir), root),
            state_files=(salt.parent, work_dir / "state.json"),
        )
