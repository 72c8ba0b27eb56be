"""Stage 6: the DVC `drift` stage - `drift.reference` vs `drift.current` over the exported
snapshot (the check itself is `recops.monitoring`)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from recops.monitoring.frames import SnapshotBase
from recops.monitoring.settings import DriftSettings
from recops.monitoring.stage import run_drift
from recops.paths import StagePaths


def drift_stage(cfg: DictConfig, paths: StagePaths) -> dict[str, Any]:
    """DVC stage: `drift.reference` vs `drift.current` over the exported snapshot."""
    base = SnapshotBase(paths.snapshot_dir)
    drift = DriftSettings.from_config(cfg)
    return run_drift(cfg, paths, base, drift.reference, drift.current, "dvc")
