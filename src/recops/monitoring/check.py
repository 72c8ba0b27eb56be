"""One drift check: features of both sides -> Evidently -> per-feature verdicts -> summary.

The summary (`reports/drift/summary.json`) is what the worker acts on and what the serving
layer exports as `data_drift_psi{feature}`; see `summary_shape` in the README.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recops.columns import Columns
from recops.console import step
from recops.models.recommender import Recommender
from recops.monitoring.features import (
    event_features,
    model_output,
    sample_users,
    side_stats,
)
from recops.monitoring.frames import EventWindow
from recops.monitoring.outputs import close_check_run, open_check_run, write_outputs
from recops.monitoring.policy import DriftPolicy, worst
from recops.monitoring.report import compare
from recops.monitoring.settings import DriftSettings, ModelOutputSettings

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


@dataclass
class Champion:
    """The registered model whose output is compared (recommendations for sampled users)."""

    name: str
    version: str
    recommender: Recommender


@dataclass
class CheckContext:
    """Where a check's outputs go and how it is labelled."""

    dataset: str
    source: str  # cli | dvc | worker
    output_dir: Path
    data: Path  # where the compared events were read from (the event store or a snapshot)
    experiment: str | None = None  # MLflow experiment; None: do not log
    log_html: bool = True  # also log the HTML report as an MLflow artifact
    root: Path | None = None


def run_check(
    reference: EventWindow,
    current: EventWindow,
    drift: DriftSettings,
    context: CheckContext,
    champion: Champion | None = None,
) -> dict[str, Any]:
    """Compare `current` against `reference`; write the report and summary; log to MLflow."""
    for side, name in ((reference, "reference"), (current, "current")):
        if side.events.empty:
            raise ValueError(f"the {name} side ({side.label}) has no events")
    policy = DriftPolicy.from_settings(drift)
    gap = pd.Timedelta(minutes=drift.session_gap_minutes)
    known = set(reference.events[Columns.item].unique())
    max_values = drift.max_values
    sizes = f"{len(reference.events):,} + {len(current.events):,} events"
    with step(f"drift features of both windows ({sizes})"):
        ref_cols = event_features(reference, None, gap, max_values)
        cur_cols = event_features(current, known, gap, max_values)
    stats = {**side_stats(current, reference)}
    if champion is not None and drift.model.enabled:
        with step(f"{champion.name} v{champion.version}'s recommendations on both windows"):
            ref_cols["reco_popularity"], cur_cols["reco_popularity"], coverage = _model_columns(
                champion, reference, current, drift.model
            )
        stats.update(coverage)
    with step("comparing the windows (Evidently)"):
        snapshot, results = compare(ref_cols, cur_cols, policy)
    summary = _summary(reference, current, policy, results, stats, context, champion)
    with step(f"writing the drift report to {context.output_dir}"):
        run_id = (
            open_check_run(summary, context.experiment, str(context.data), context.root)
            if context.experiment
            else None
        )
        summary["mlflow_run_id"] = run_id
        write_outputs(snapshot, summary, context.output_dir)
        if run_id is not None:
            close_check_run(run_id, context.output_dir, context.log_html)
    log.info(
        "drift %s vs %s: action %s, max PSI %.3f, drifted %s",
        current.label, reference.label, summary["action"], summary["max_psi"] or 0.0,
        summary["drifted_features"] or "none",
    )  # fmt: skip
    return summary


def _model_columns(
    champion: Champion, reference: EventWindow, current: EventWindow, model: ModelOutputSettings
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    n, k, seed = model.sample_users, model.k, model.seed
    ref_pop, ref_cov = model_output(
        champion.recommender, sample_users(reference.events, n, seed), k
    )
    cur_pop, cur_cov = model_output(champion.recommender, sample_users(current.events, n, seed), k)
    return ref_pop, cur_pop, {"coverage_reference": ref_cov, "coverage_current": cur_cov}


def _summary(
    reference: EventWindow,
    current: EventWindow,
    policy: DriftPolicy,
    results: Mapping[str, Any],
    stats: dict[str, float],
    context: CheckContext,
    champion: Champion | None,
) -> dict[str, Any]:
    scored = {n: r for n, r in results.items() if r.psi is not None}
    drifted = sorted(n for n, r in scored.items() if r.drifted)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": context.source,
        "dataset": context.dataset,
        "reference": reference.describe(),
        "current": current.describe(),
        "method": policy.method,
        "threshold": policy.threshold,
        "bands": dict(policy.bands),
        "features": {n: r.to_dict() for n, r in results.items()},
        "stats": {k: (None if not np.isfinite(v) else v) for k, v in stats.items()},
        "drifted_features": drifted,
        "n_drifted": len(drifted),
        "max_psi": max((r.psi for r in scored.values()), default=None),
        "action": worst([r.band for r in results.values()]),
        "model": None if champion is None else {"name": champion.name, "version": champion.version},
        "report_html": "report.html" if scored else None,
        "mlflow_run_id": None,
    }
