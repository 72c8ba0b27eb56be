"""The `quality` config section (`conf/quality/default.yaml`, the only home of its defaults)
as a typed object built by `recops.settings.build`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from recops.settings import build_group


@dataclass(frozen=True)
class QualitySettings:
    output_dir: Path  # relative to the project root
    min_user_events: int
    min_item_events: int
    window_days: float
    future_tolerance_hours: float
    sample_rows: int
    fail_on: dict[str, float]  # check name: limit (fails above)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> QualitySettings:
        return build_group(cls, cfg, "quality")
