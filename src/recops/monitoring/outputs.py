"""Where a check's results go: the report folder (HTML + summary.json) and an MLflow run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from recops.tracking.runs import owner_tags
from recops.tracking.store import (
    DataSnapshot,
    configure_tracking,
    ensure_experiment,
    log_dataset_input,
)

SUMMARY_FILE, REPORT_FILE = "summary.json", "report.html"
_MAX_PARAM = 500  # MLflow's limit on a param value


def write_outputs(snapshot: Any, summary: dict[str, Any], output_dir: Path) -> None:
    """report.html (when there is a report) and summary.json, each replaced atomically so a
    reader (the serving layer) never sees a half-written file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if snapshot is not None:
        tmp = output_dir / f".{REPORT_FILE}.tmp"
        snapshot.save_html(str(tmp))
        os.replace(tmp, output_dir / REPORT_FILE)
    tmp = output_dir / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, output_dir / SUMMARY_FILE)


def check_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """`psi_<feature>` for every scored feature, plus the headline numbers and stats."""
    metrics = {
        f"psi_{name}": float(result["psi"])
        for name, result in summary["features"].items()
        if result.get("psi") is not None
    }
    metrics["n_drifted"] = float(summary["n_drifted"])
    metrics["reference_events"] = float(summary["reference"]["n_events"])
    metrics["current_events"] = float(summary["current"]["n_events"])
    if summary.get("max_psi") is not None:
        metrics["max_psi"] = float(summary["max_psi"])
    for key, value in (summary.get("stats") or {}).items():
        if value is not None and math.isfinite(value):
            metrics[key] = float(value)
    return metrics


def checked_data(summary: dict[str, Any], source: str) -> DataSnapshot:
    """What a check compared, as its run's dataset input: the dataset read from `source`, its
    digest a fingerprint of both sides (window spec, counts, time span; not a content hash)."""
    sides = json.dumps([summary["reference"], summary["current"]], sort_keys=True, default=str)
    return DataSnapshot(
        name=str(summary["dataset"]),
        digest=hashlib.sha256(sides.encode()).hexdigest(),
        source=source,
    )


def open_check_run(
    summary: dict[str, Any], experiment: str, data_source: str, root: Path | None = None
) -> str:
    """A run in `experiment` holding the check's numbers, with the compared data (read from
    `data_source`) as its dataset input; returns its id (still running)."""
    configure_tracking(root)
    client = MlflowClient()
    experiment_id = ensure_experiment(experiment, root)
    model = summary.get("model") or {}
    tags = {
        "action": summary["action"],
        "source": summary["source"],
        "dataset": summary["dataset"],
        "drifted_features": ",".join(summary["drifted_features"]) or "none",
        "champion_version": str(model.get("version", "none")),
        **owner_tags(),  # a check killed mid-logging is marked FAILED by the next recovery
    }
    run = client.create_run(
        experiment_id, run_name=f"drift-{summary['source']}-{summary['action']}", tags=tags
    )
    run_id = str(run.info.run_id)
    params = {
        "reference": summary["reference"]["spec"],
        "current": summary["current"]["spec"],
        "method": summary["method"],
        "threshold": summary["threshold"],
        **{f"bands.{k}": v for k, v in summary["bands"].items()},
    }
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, _now_ms(), 0) for k, v in check_metrics(summary).items()],
        params=[Param(k, str(v)[:_MAX_PARAM]) for k, v in params.items()],
    )
    log_dataset_input(checked_data(summary, data_source), context="drift", run_id=run_id)
    return run_id


def close_check_run(run_id: str, output_dir: Path, log_html: bool) -> None:
    client = MlflowClient()
    client.log_artifact(run_id, str(output_dir / SUMMARY_FILE), "drift")
    if log_html and (output_dir / REPORT_FILE).exists():
        client.log_artifact(run_id, str(output_dir / REPORT_FILE), "drift")
    client.set_terminated(run_id, "FINISHED")


def _now_ms() -> int:
    return int(time.time() * 1000)
