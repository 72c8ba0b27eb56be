"""The worker's settings (`conf/worker/default.yaml`) as typed, absolute values."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from omegaconf import DictConfig

from recops.config import resolve_path
from recops.data.settings import FileMapping
from recops.errors import ConfigError
from recops.gdpr.settings import GdprSettings
from recops.monitoring.policy import ACTIONS
from recops.paths import StagePaths
from recops.settings import build_group

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PROMOTE_TARGETS = ("champion", "challenger")


def parse_duration(value: object, key: str) -> timedelta | None:
    """`7d`, `12h`, `30m`, `45s`, or a number of seconds; None/"null"/"" for none."""
    if value is None or str(value).strip().lower() in ("", "null", "none"):
        return None
    match = _DURATION.match(str(value).strip().lower())
    if not match:
        raise ConfigError(f"{key}: {value!r} is not a duration like 7d, 12h, 30m or 45s")
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact `7d` / `12h` / `30m` / `45s` form of a duration."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _SECONDS[unit] == 0:
            return f"{seconds / _SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class WorkerSection:
    """`conf/worker/default.yaml` as written (the only home of its defaults)."""

    incoming_dir: Path
    work_dir: Path
    reports_dir: Path
    poll_interval: int | float | str  # a duration (`parse_duration`)
    retrain_every: int | float | str | None
    retrain_on: tuple[str, ...]
    promote_to: str
    fold_in: bool
    file: FileMapping
    experiment: str

    def __post_init__(self) -> None:
        unknown = sorted(set(self.retrain_on) - set(ACTIONS[1:]))
        if unknown:
            raise ConfigError(f"worker.retrain_on: unknown {unknown}; allowed {ACTIONS[1:]}")
        if self.promote_to not in PROMOTE_TARGETS:
            raise ConfigError(
                f"worker.promote_to must be one of {PROMOTE_TARGETS}, got {self.promote_to!r}"
            )


@dataclass(frozen=True)
class WorkerSettings:
    """The worker's settings with absolute paths and parsed durations."""

    incoming_dir: Path
    work_dir: Path
    reports_dir: Path
    poll_interval: timedelta
    retrain_every: timedelta | None
    retrain_on: tuple[str, ...]
    promote_to: str
    fold_in: bool
    experiment: str
    erasure_request: Path  # gdpr.retrain_request: retrains GDPR erasures asked for

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path) -> WorkerSettings:
        w = build_group(WorkerSection, cfg, "worker")
        poll = parse_duration(w.poll_interval, "worker.poll_interval")
        if poll is None or poll.total_seconds() <= 0:
            raise ConfigError(
                f"worker.poll_interval must be a duration > 0, got {w.poll_interval!r}"
            )
        return cls(
            incoming_dir=resolve_path(w.incoming_dir, root),
            work_dir=resolve_path(w.work_dir, root),
            reports_dir=resolve_path(w.reports_dir, root),
            poll_interval=poll,
            retrain_every=parse_duration(w.retrain_every, "worker.retrain_every"),
            retrain_on=w.retrain_on,
            promote_to=w.promote_to,
            fold_in=w.fold_in,
            experiment=w.experiment,
            erasure_request=GdprSettings.from_config(cfg, root).retrain_request,
        )

    @property
    def state_file(self) -> Path:
        return self.work_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        return self.work_dir / "worker.pid"

    @property
    def lock_file(self) -> Path:
        return self.work_dir / "worker.lock"

    @property
    def processed_dir(self) -> Path:
        return self.incoming_dir / "processed"

    @property
    def rejected_dir(self) -> Path:
        return self.incoming_dir / "rejected"

    def stage_paths(self, paths: StagePaths) -> StagePaths:
        """The worker's own snapshot/features/model/reports, beside the DVC-tracked ones."""
        return replace(
            paths,
            snapshot_dir=self.work_dir / "snapshot",
            features_dir=self.work_dir / "features",
            model_dir=self.work_dir / "model",
            run_file=self.work_dir / "run.json",
            reports_dir=self.reports_dir,
        )
