"""Drift settings per feature and the retraining policy bands (`conf/drift/default.yaml`).

A feature *drifts* when its stattest says so (PSI >= its threshold by default). Its *band* is
read from its PSI: below `bands.plan_retrain` ok, then plan_retrain, retrain_soon, retrain_now.
A feature that did not drift is ok whatever its PSI (a per-feature threshold above 0.2 means
"this much is noise here"), and a drifted one is at least plan_retrain (a threshold below 0.2
means "this feature matters more"). The worst band over the features is the check's action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recops.errors import ConfigError
from recops.monitoring.features import FEATURE_BY_NAME

ACTIONS = ("ok", "plan_retrain", "retrain_soon", "retrain_now")
DEFAULT_BANDS = {"plan_retrain": 0.2, "retrain_soon": 0.3, "retrain_now": 0.5}


@dataclass(frozen=True)
class FeatureSetting:
    method: str
    threshold: float


@dataclass(frozen=True)
class DriftPolicy:
    method: str = "psi"
    threshold: float = 0.2
    bands: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BANDS))
    overrides: dict[str, FeatureSetting] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()
    min_samples: int = 30

    @classmethod
    def from_config(cls, drift: Mapping[str, Any]) -> DriftPolicy:
        method, threshold = str(drift.get("method", "psi")), float(drift.get("threshold", 0.2))
        bands = {
            **DEFAULT_BANDS,
            **{str(k): float(v) for k, v in (drift.get("bands") or {}).items()},
        }
        _check_bands(bands)
        overrides = {}
        for name, given in (drift.get("features") or {}).items():
            _check_feature(str(name))
            given = given or {}
            overrides[str(name)] = FeatureSetting(
                str(given.get("method", method)), float(given.get("threshold", threshold))
            )
        exclude = frozenset(str(n) for n in drift.get("exclude") or [])
        for name in exclude:
            _check_feature(name)
        return cls(method, threshold, bands, overrides, exclude, int(drift.get("min_samples", 30)))

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
    unknown = set(bands) - set(DEFAULT_BANDS)
    if unknown:
        raise ConfigError(f"drift.bands: unknown {sorted(unknown)}; allowed {list(DEFAULT_BANDS)}")
    edges = [bands[a] for a in ACTIONS[1:]]
    if edges != sorted(edges):
        raise ConfigError(f"drift.bands must increase: {bands}")


def _check_feature(name: str) -> None:
    if name not in FEATURE_BY_NAME:
        raise ConfigError(f"drift: unknown feature {name!r}; known: {sorted(FEATURE_BY_NAME)}")
