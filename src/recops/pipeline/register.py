"""Stage 5: register the run's model as `candidate`; promote it to `champion` if it passes
the gates of `registry.gates.register` (default: the metric gate against the champion
re-evaluated on this split). Writes `reports/registry.json` saying what happened and why.

Moves go through the registry lifecycle: out-of-band alias changes are audited first, the
candidate and champion moves are locked, re-checked, audited and kept in the champion history.
"""

from __future__ import annotations

import logging

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.features.dataset import SplitData
from recops.paths import StagePaths, read_json, write_json
from recops.pipeline.evaluate import METRICS_FILE
from recops.registry.comparison import GateResult, MetricComparison
from recops.registry.gates import as_dicts, failed, run_gates
from recops.registry.lifecycle import Registry
from recops.registry.promotion import RegistrationOutcome, apply_comparison
from recops.tracking.store import configure_tracking

log = logging.getLogger(__name__)
REGISTRY_REPORT = "registry.json"


def register_stage(
    cfg: DictConfig,
    paths: StagePaths,
    split: SplitData | None = None,
    candidate_metrics: dict[str, float] | None = None,
) -> RegistrationOutcome | None:
    if not cfg.register:
        write_json(
            paths.reports_dir / REGISTRY_REPORT, {"skipped": True, "reason": "register=false"}
        )
        log.info("registry: skipped (register=false)")
        return None
    configure_tracking(paths.root)
    client = MlflowClient()
    registry = Registry(cfg, client, paths.root)
    reg = registry.settings
    run = read_json(paths.run_file)
    if candidate_metrics is None:
        candidate_metrics = read_json(paths.reports_dir / METRICS_FILE)["model"]
    metric = reg.metric
    number, created = registry.register_run(run["run_id"], run["model_uri"], candidate_metrics)
    outcome = RegistrationOutcome(
        reg.model_name,
        number,
        run["run_id"],
        created,
        False,
        "",
        metric,
        candidate_metrics.get(metric),
    )
    aliases = registry.aliases()
    champion = aliases.get(reg.champion_alias)
    ctx = registry.context(number, reg.champion_alias, aliases)
    ctx.holdout = split or SplitData.load(paths.features_dir, with_events=False)
    ctx.candidate_metrics = candidate_metrics
    results = run_gates(reg.gates_for("register"), ctx)
    decide_from_gates(outcome, results, ctx.comparison)
    outcome.gates = as_dicts(results)
    if outcome.promoted and champion != number:
        reason = f"register stage: {outcome.reason}"
        registry.commit(ctx.alias, number, champion, "promote", reason, results)
    outcome.aliases = sorted(client.get_model_version(reg.model_name, number).aliases)
    write_json(paths.reports_dir / REGISTRY_REPORT, outcome.to_dict())
    log.info("registry: %s v%s — %s", reg.model_name, number, outcome.reason)
    return outcome


def decide_from_gates(
    outcome: RegistrationOutcome, results: list[GateResult], comparison: MetricComparison | None
) -> None:
    """Promoted when every gate passed; the reason is the metric gate's (as before), or the
    details of the gates that failed."""
    if comparison is not None:
        metric_gate = next(r for r in results if r.name == "metric")
        apply_comparison(outcome, metric_gate, comparison)
    bad = failed(results)
    outcome.promoted = not bad
    if not bad:
        outcome.reason = outcome.reason or "; ".join(r.detail for r in results) or "no gates"
        return
    outcome.previous_champion = None
    outcome.reason = "; ".join(
        r.detail if r.name == "metric" else f"gate {r.name} failed: {r.detail}" for r in bad
    )
