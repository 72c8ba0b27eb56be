"""Registration and gated promotion: a new version is `candidate`; it becomes `champion`
when it passes the gate.

The gate re-evaluates the current champion on the *current* split instead of trusting the
number it had when it was promoted, so both are measured on the same holdout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.models.recommender import Recommender
from recops.registry.comparison import GateResult, MetricComparison, compare_metric
from recops.registry.comparison import beats as beats  # re-exported

log = logging.getLogger(__name__)
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


def find_version_for_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The registered version already made from `run_id`, if any (re-runs create none)."""
    versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    return min(versions, key=lambda v: int(v.version)) if versions else None


def current_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_version(
    client: MlflowClient, name: str, run: dict[str, Any], tags: dict[str, str]
) -> tuple[ModelVersion, bool]:
    """Existing version of this run, or a new one with `tags`."""
    existing = find_version_for_run(client, name, run["run_id"])
    if existing is not None:
        log.info("run %s is already version %s of %s", run["run_id"], existing.version, name)
        return existing, False
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Recommenders trained by RecOps.")
    version = mlflow.register_model(run["model_uri"], name, tags=tags)
    return version, True


def load_pyfunc(name: str, version: str) -> PyFuncModel:
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def unwrap(model: PyFuncModel, name: str, version: str) -> Recommender:
    """The `Recommender` inside a loaded recops pyfunc model."""
    recommender = getattr(model.unwrap_python_model(), "recommender", None)
    if not isinstance(recommender, Recommender):
        raise TypeError(f"{name} v{version} is not a recops recommender")
    return recommender


def load_version(name: str, version: str) -> Recommender:
    """The `Recommender` inside a registered pyfunc version."""
    return unwrap(load_pyfunc(name, version), name, version)


def champion_score(
    name: str, version: str, measure: Callable[[Recommender], float | None]
) -> tuple[float | None, str | None]:
    """The champion's metric re-measured by `measure`, or (None, why it could not be)."""
    try:
        recommender = load_version(name, version)
    except Exception as exc:  # an unloadable champion must not block a healthy candidate
        return None, f"champion v{version} could not be loaded ({type(exc).__name__}: {exc})"
    return measure(recommender), None


def decide(
    outcome: RegistrationOutcome,
    champion: ModelVersion | None,
    score: Callable[[str], tuple[float | None, str | None]],
    reg: DictConfig,
) -> None:
    """Fill in whether the candidate becomes champion, and why (the `metric` gate)."""
    champion_version = None if champion is None else str(champion.version)
    gate, seen = compare_metric(
        outcome.metric,
        outcome.version,
        outcome.candidate_value,
        champion_version,
        lambda: score(str(champion_version)),
        float(reg.margin),
        str(reg.margin_mode),
    )
    apply_comparison(outcome, gate, seen)


def apply_comparison(
    outcome: RegistrationOutcome, gate: GateResult, seen: MetricComparison
) -> None:
    outcome.promoted, outcome.reason = gate.passed, gate.detail
    outcome.champion_version = seen.champion_version
    outcome.champion_value = seen.champion_value
    outcome.previous_champion = seen.replaces if gate.passed else None


def promote(client: MlflowClient, reg: DictConfig, version: str, previous: str | None) -> None:
    """Move the champion alias, remembering the version it replaces for rollback."""
    client.set_registered_model_alias(reg.model_name, reg.champion_alias, version)
    client.set_model_version_tag(
        reg.model_name, version, PROMOTED_AT_TAG, datetime.now(UTC).isoformat(timespec="seconds")
    )
    if previous is not None:
        client.set_model_version_tag(reg.model_name, version, PREVIOUS_CHAMPION_TAG, previous)


def version_tags(
    client: MlflowClient, run: dict[str, Any], metrics: dict[str, float], metric: str
) -> dict[str, str]:
    run_tags = client.get_run(run["run_id"]).data.tags
    keep = ("model_type", "dataset", "data_snapshot", "split", "git_commit")
    tags = {k: run_tags[k] for k in keep if k in run_tags}
    value = metrics.get(metric)
    if value is not None:
        tags[metric] = f"{value:.6f}"
    return tags
