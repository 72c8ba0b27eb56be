from __future__ import annotations

import pytest

from recops.config import compose, to_dict
from recops.errors import ConfigError
from recops.monitoring.policy import DriftPolicy, worst


def drift_policy(**changes: object) -> DriftPolicy:
    """The policy of the shipped conf/drift, with `changes` to its top-level keys."""
    return DriftPolicy.from_config({**to_dict(compose([]).drift), **changes})


@pytest.mark.parametrize(
    ("value", "band"),
    [(0.1, "plan_retrain"), (0.2, "plan_retrain"), (0.29, "plan_retrain"), (0.3, "retrain_soon"),
     (0.49, "retrain_soon"), (0.5, "retrain_now"), (2.0, "retrain_now")],
)  # fmt: skip
def test_bands_of_drifted_features(value: float, band: str) -> None:
    assert drift_policy().band(value, drifted=True) == band


def test_a_feature_that_did_not_drift_is_ok_whatever_its_psi() -> None:
    assert drift_policy().band(0.4, drifted=False) == "ok"


def test_per_feature_overrides_and_worst_action() -> None:
    policy = drift_policy(
        threshold=0.2, features={"category": {"threshold": 0.35}}, exclude=["price"]
    )
    assert policy.setting("category").threshold == 0.35
    assert policy.setting("event_type").threshold == 0.2
    assert policy.exclude == {"price"}
    assert worst(["ok", "retrain_soon", "plan_retrain"]) == "retrain_soon"
    assert worst([]) == "ok"


@pytest.mark.parametrize(
    "cfg",
    [
        {"features": {"nope": {}}},
        {"bands": {"plan_retrain": 0.2, "retrain_soon": 0.3, "retrain_now": 0.1}},
        {"bands": {"plan_retrain": 0.2, "retrain_soon": 0.3, "retrain_now": 0.5, "later": 1.0}},
    ],
)
def test_bad_policy_config_is_rejected(cfg: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        drift_policy(**cfg)
