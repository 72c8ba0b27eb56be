"""Stage 5: register the run's model as `candidate`; promote it to `champion` if it passes
the gate. Writes `reports/registry.json` saying what happened and why."""

from __future__ import annotations

import logging

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.context import StagePaths, read_json, write_json
from recops.pipeline.evaluate import METRICS_FILE, evaluate_with_config
from recops.registry.promotion import (
    RegistrationOutcome,
    champion_score,
    current_alias,
    decide,
    promote,
    register_version,
    version_tags,
)
from recops.tracking.store import configure_tracking

log = logging.getLogger(__name__)
REGISTRY_REPORT = "registry.json"


def register_stage(
    cfg: DictConfig,
    paths: StagePaths,
    split: SplitData | None = None,
    candidate_metrics: dict[str, float] | None = None,
) -> RegistrationOutcome | None:
    reg = cfg.registry
    if not cfg.register:
        write_json(
            paths.reports_dir / REGISTRY_REPORT, {"skipped": True, "reason": "register=false"}
        )
        log.info("registry: skipped (register=false)")
        return None
    configure_tracking(paths.root)
    client = MlflowClient()
    run = read_json(paths.run_file)
    if candidate_metrics is None:
        candidate_metrics = read_json(paths.reports_dir / METRICS_FILE)["model"]
    metric = str(reg.metric)
    value = candidate_metrics.get(metric)
    version, created = register_version(
        client, reg.model_name, run, version_tags(client, run, candidate_metrics, metric)
    )
    number = str(version.version)  # MLflow returns int or str depending on the store
    client.set_registered_model_alias(reg.model_name, reg.candidate_alias, number)
    outcome = RegistrationOutcome(
        reg.model_name, number, run["run_id"], created, False, "", metric, value
    )
    champion = current_alias(client, reg.model_name, reg.champion_alias)
    holdout = split or SplitData.load(paths.features_dir, with_events=False)

    def measure(recommender: Recommender) -> float | None:
        result = evaluate_with_config(recommender, holdout, cfg, with_baseline=False)
        return result.metrics.get(metric)

    decide(outcome, champion, lambda v: champion_score(reg.model_name, v, measure), reg)
    if outcome.promoted:
        promote(client, reg, number, outcome.previous_champion)
    outcome.aliases = sorted(client.get_model_version(reg.model_name, number).aliases)
    write_json(paths.reports_dir / REGISTRY_REPORT, outcome.to_dict())
    log.info("registry: %s v%s — %s", reg.model_name, number, outcome.reason)
    return outcome
