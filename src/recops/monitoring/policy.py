"""Drift settings per feature and the retraining policy bands (`conf/drift/default.yaml`).

A feature *drifts* when its stattest says so (PSI >= its threshold by default). Its *band* is
read from its PSI: below `bands.plan_retrain` ok, then plan_retrain, retrain_soon, retrain_now.
A feature that did not drift is ok whatever its PSI (a per-feature threshold above 0.2 means
"this much is noise here"), and a drifted one is at least plan_retrain (a threshold below 0.2
means "this feature matters more"). The worst band over the features is the check's action.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from recops.errors import ConfigError
from recops.monitoring.features import FEATURE_BY_NAME
from recops.monitoring.settings import DriftSettings
from recops.settings import build

ACTIONS = ("ok", "plan_retrain", "retrain_soon", "retrain_now")


@dataclass(frozen=True)
class FeatureSetting:
    method: str
    threshold: float


@dataclass(frozen=True)
class DriftPolicy:
    method: str
    threshold: float
    bands: dict[str, float]
    overrides: dict[str, FeatureSetting]
    exclude: frozenset[str]
    min_samples: int

    @classmethod
    def from_config(cls, drift: Any) -> DriftPolicy:
        """From the `drift` group (a mapping or DictConfig, checked strictly)."""
        return cls.from_settings(build(DriftSettings, drift, "drift"))

    @classmethod
    def from_settings(cls, drift: DriftSettings) -> DriftPolicy:
        bands = asdict(drift.bands)
        _check_bands(bands)
        overrides = {}
        for name, given in drift.features.items():
            _check_feature(name)
            overrides[name] = FeatureSetting(
                given.method or drift.method,
                drift.threshold if given.threshold is None else given.threshold,
            )
        for name in drift.exclude:
            _check_feature(name)
        return cls(
            drift.method,
            drift.threshold,
            bands,
            overrides,
            frozenset(drift.exclude),
            drift.min_samples,
        )

    def setting(self, feature: str) -> FeatureSetting:
        return self.overrides.get(feature, FeatureSetting(self.method, self.threshold))

    def band(self, psi_value: float, drifted: bool) -> str:
        if not drifted:
            return "ok"
        band = "plan_retrain"
        for action in ACTIONS[1:]:
            if psi_value >= self.bands[action]:
                band = action
        return band


def worst(bands: list[str]) -> str:
    return max(bands, key=ACTIONS.index, default="ok")


def _check_bands(bands: dict[str, float]) -> None:
    edges = [bands[a] for a in ACTIONS[1:]]
    if edges != sorted(edges):
        raise ConfigError(f"drift.bands must increase: {bands}")


def _check_feature(name: str) -> None:
    if name not in FEATURE_BY_NAME:
        raise ConfigError(f"drift: unknown feature {name!r}; known: {sorted(FEATURE_BY_NAME)}")
