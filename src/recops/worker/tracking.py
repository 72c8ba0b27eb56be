"""One MLflow run per worker cycle (experiment `worker.experiment`), tagged with its outcome.

The client API is used instead of `mlflow.start_run`, so the cycle run stays open while the
training run of the same cycle is started and ended through the fluent API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from recops.tracking.runs import owner_tags
from recops.tracking.store import configure_tracking, ensure_experiment

OUTCOMES = (
    "no_new_data",
    "ingested_no_drift",
    "retrained_promoted",
    "retrained_not_promoted",
    "failed",
)
_TAG_KEYS = (
    "outcome", "action", "training_mode", "retrain_reason", "model_version", "promoted_to",
    "promotion_reason", "training_run_id", "drift_run_id", "error",
)  # fmt: skip
_METRIC_KEYS = ("n_files", "n_ingested_files", "n_inserted", "n_quarantined", "seconds", "max_psi")
_MAX_TAG = 5000


def open_cycle_run(experiment: str, cycle: int, dataset: str, root: Path | None) -> str:
    configure_tracking(root)
    client = MlflowClient()
    run = client.create_run(
        ensure_experiment(experiment, root),
        run_name=f"cycle-{cycle}",
        tags={"cycle": str(cycle), "dataset": dataset, "outcome": "running", **owner_tags()},
    )
    return str(run.info.run_id)


def close_cycle_run(run_id: str, record: dict[str, Any]) -> None:
    client = MlflowClient()
    now = int(time.time() * 1000)
    tags = [
        RunTag(key, str(record[key])[:_MAX_TAG]) for key in _TAG_KEYS if record.get(key) is not None
    ]
    metrics = [
        Metric(key, float(record[key]), now, 0)
        for key in _METRIC_KEYS
        if isinstance(record.get(key), int | float)
    ]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    client.set_terminated(run_id, "FAILED" if record.get("outcome") == "failed" else "FINISHED")


def fail_stale_run(run_id: str, error: str) -> None:
    """Close the run of a cycle whose process died mid-cycle."""
    client = MlflowClient()
    client.set_tag(run_id, "outcome", "failed")
    client.set_tag(run_id, "error", error)
    client.set_terminated(run_id, "FAILED")
