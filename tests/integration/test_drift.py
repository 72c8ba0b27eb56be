"""Drift checks over a real event store: a shifted synthetic period is flagged, an unshifted
one is not; outputs (HTML, summary.json, MLflow run); the CLI and the DVC stage function."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recops.config import compose
from recops.data.sources.synthetic import SyntheticSource
from recops.monitoring.outputs import checked_data
from recops.monitoring.stage import drift_cli
from recops.pipeline.context import StagePaths
from recops.pipeline.drift import drift_stage
from recops.pipeline.prepare import ingest_stage
from recops.pipeline.stages import run_chain
from recops.tracking.runs import OWNER_TAG

from .conftest import PROJECT_ROOT, TINY_WORLD, project_env, tiny_overrides
from .mlflow_template import initialised_store, tracking_env

pytestmark = pytest.mark.integration
SHIFTED = {"data.source.weeks": 6, "+data.source.shift": "{weeks:2}"}
FEATURES = {
    "user_activity", "item_popularity", "new_items", "event_type", "category", "price",
    "session_length",
}  # fmt: skip


@pytest.fixture
def mlflow_store(tmp_path: Path) -> Iterator[str]:
    """An empty MLflow store in tmp_path/mlflow.db (where `project_env` points subprocesses)."""
    with tracking_env(initialised_store(tmp_path), PROJECT_ROOT) as uri:
        yield uri


def _ingested(tmp: Path, **extra: Any) -> tuple[Any, StagePaths]:
    cfg = compose(tiny_overrides(tmp, **extra))
    paths = StagePaths.from_config(cfg).standalone(cfg)
    ingest_stage(cfg, paths)
    return cfg, paths


def test_shifted_period_is_flagged_and_an_unshifted_one_is_not(
    tmp_path: Path, mlflow_store: str
) -> None:
    # 8 unshifted weeks: the last 2 look like the first 6
    cfg, _ = _ingested(tmp_path)
    calm = drift_cli(cfg, "first:42d", "last:14d")
    assert calm["action"] == "ok", calm["features"]
    assert calm["drifted_features"] == [] and set(calm["features"]) == FEATURES
    assert all(f["psi"] < 0.2 for f in calm["features"].values())
    assert calm["model"] is None  # no champion yet: no model-output features

    # 6 weeks, then 2 in which 20% of the catalogue is new and half the users change tastes
    cfg, _ = _ingested(tmp_path, **SHIFTED)
    shifted = drift_cli(cfg, "first:42d", "last:14d")
    assert shifted["action"] != "ok"
    assert "new_items" in shifted["drifted_features"]
    assert shifted["features"]["new_items"]["psi"] >= 0.5
    assert shifted["stats"]["new_item_share"] > 0.05

    out = tmp_path / "reports" / "drift"
    assert (out / "report.html").stat().st_size > 10_000
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["action"] == shifted["action"] and on_disk["source"] == "cli"
    client = MlflowClient()
    drift_runs = client.search_runs([client.get_experiment_by_name("recops-drift").experiment_id])
    assert len(drift_runs) == 2
    logged = client.get_run(shifted["mlflow_run_id"])
    assert logged.data.metrics["psi_new_items"] == pytest.approx(
        shifted["features"]["new_items"]["psi"]
    )
    assert logged.data.tags["action"] == shifted["action"]
    _assert_checked_data(logged, shifted, str(StagePaths.from_config(cfg).duckdb))
    # owned like every RecOps run: a check killed mid-logging is failed by the next recovery
    assert json.loads(logged.data.tags[OWNER_TAG])["pid"] > 0
    assert {a.path for a in client.list_artifacts(logged.info.run_id, "drift")} == {
        "drift/summary.json",
        "drift/report.html",
    }


def test_dvc_stage_compares_snapshot_windows_with_the_champions_output(
    tmp_path: Path, mlflow_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose(tiny_overrides(tmp_path, **{"model.factors": 16}))
    run_chain(cfg)  # snapshot + champion
    paths = StagePaths.from_config(cfg).standalone(cfg)
    recops_log = logging.getLogger("recops")  # it does not propagate (console.setup_logging)
    recops_log.addHandler(caplog.handler)
    try:
        summary = drift_stage(cfg, paths)
    finally:
        recops_log.removeHandler(caplog.handler)
    # each step of the check says what it did and how long it took (20 s at 20M events)
    done = [r.getMessage() for r in caplog.records if " done in " in r.getMessage()]
    for what in ("reading the windows", "loading the champion", "drift features",
                 "recommendations on both windows", "comparing the windows",
                 "writing the drift report"):  # fmt: skip
        assert any(what in line for line in done), (what, done)
    assert summary["source"] == "dvc" and summary["action"] == "ok"
    assert summary["model"] == {"name": "recops-recommender", "version": "1"}
    assert summary["features"]["reco_popularity"]["psi"] < 0.2
    assert 0 < summary["stats"]["coverage_current"] <= 1
    run = MlflowClient().get_run(summary["mlflow_run_id"])
    _assert_checked_data(run, summary, str(paths.snapshot_dir))


def _assert_checked_data(run: Any, summary: dict[str, Any], source: str) -> None:
    """The drift run's dataset input: the dataset, a digest of the compared sides, where the
    events were read from (the MLflow UI's Dataset column)."""
    (entry,) = run.inputs.dataset_inputs
    assert entry.dataset.name == summary["dataset"]
    assert entry.dataset.digest == checked_data(summary, source).digest[:36]
    assert source in entry.dataset.source
    assert {t.key: t.value for t in entry.tags}["mlflow.data.context"] == "drift"


def _exit_code_and_output(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_cli_with_an_events_file_and_fail_on(tmp_path: Path, mlflow_store: str) -> None:
    _ingested(tmp_path)
    env = project_env(tmp_path)
    overrides = tiny_overrides(tmp_path)
    source = {k.rsplit(".", 1)[1]: v for k, v in TINY_WORLD.items()}
    raw = SyntheticSource(**source, weeks=6, shift={"weeks": 2}).load()  # type: ignore[arg-type]
    late = raw.events[raw.events["timestamp"] >= pd.Timestamp("2024-02-12")]
    drop = tmp_path / "week7-8.csv"
    late[["user_id", "item_id", "timestamp", "event_type"]].to_csv(drop, index=False)

    cmd = ["recops", "drift", "--reference", "all", "--current", str(drop), *overrides]
    code, out = _exit_code_and_output([*cmd, "--fail-on", "retrain_now"], env)
    assert code == 2, out
    assert "new_items" in out and "retrain_now" in out
    summary = json.loads((tmp_path / "reports" / "drift" / "summary.json").read_text())
    assert summary["current"]["spec"] == str(drop)
    assert summary["current"]["n_events"] == len(late)
    assert summary["action"] == "retrain_now"
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    assert MlflowClient().get_run(summary["mlflow_run_id"]).data.metrics["n_drifted"] >= 1
