"""The `drift` config section (`conf/drift/default.yaml`, the only home of its defaults) as a
typed object built by `recops.settings.build`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from recops.settings import build_group


@dataclass(frozen=True)
class FeatureOverride:
    """`drift.features.<name>`: what differs from the global method/threshold (None: same)."""

    method: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Bands:
    """PSI from which a drifted feature's action is this band (see recops.monitoring.policy)."""

    plan_retrain: float
    retrain_soon: float
    retrain_now: float


@dataclass(frozen=True)
class ModelOutputSettings:
    """The champion's recommendations for a sample of each side's users."""

    enabled: bool
    sample_users: int
    k: int
    seed: int


@dataclass(frozen=True)
class DriftSettings:
    reference: str
    current: str
    method: str
    threshold: float
    features: dict[str, FeatureOverride]
    exclude: tuple[str, ...]
    bands: Bands
    min_samples: int
    max_values: int | None
    session_gap_minutes: float
    model: ModelOutputSettings
    output_dir: Path  # relative to the project root
    experiment: str | None
    log_html: bool

    @classmethod
    def from_config(cls, cfg: DictConfig) -> DriftSettings:
        """From the root config's `drift` group."""
        return build_group(cls, cfg, "drift")
