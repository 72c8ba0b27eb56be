"""What the register stage decided (`RegistrationOutcome`) and the champion move itself.

Registering is `Registry.register_run` (`recops.registry.registration`); deciding is the gates
(`recops.registry.gates`, the metric comparison in `recops.registry.comparison`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow.tracking import MlflowClient

from recops.registry.comparison import GateResult, MetricComparison
from recops.registry.settings import RegistrySettings

PREVIOUS_CHAMPION_TAG = "recops.previous_champion"
PROMOTED_AT_TAG = "recops.promoted_at"


@dataclass
class RegistrationOutcome:
    """What the register stage did and why (written to `reports/registry.json`)."""

    model_name: str
    version: str
    run_id: str
    created: bool
    promoted: bool
    reason: str
    metric: str
    candidate_value: float | None
    champion_version: str | None = None
    champion_value: float | None = None
    previous_champion: str | None = None
    aliases: list[str] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_comparison(
    outcome: RegistrationOutcome, gate: GateResult, seen: MetricComparison
) -> None:
    outcome.promoted, outcome.reason = gate.passed, gate.detail
    outcome.champion_version = seen.champion_version
    outcome.champion_value = seen.champion_value
    outcome.previous_champion = seen.replaces if gate.passed else None


def promote(
    client: MlflowClient, reg: RegistrySettings, version: str, previous: str | None
) -> None:
    """Move the champion alias, remembering the version it replaces for rollback."""
    client.set_registered_model_alias(reg.model_name, reg.champion_alias, version)
    client.set_model_version_tag(
        reg.model_name, version, PROMOTED_AT_TAG, datetime.now(UTC).isoformat(timespec="seconds")
    )
    if previous is not None:
        client.set_model_version_tag(reg.model_name, version, PREVIOUS_CHAMPION_TAG, previous)
