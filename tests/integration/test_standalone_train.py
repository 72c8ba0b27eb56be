"""`python -m pipelines.train ...` standalone: prepares data, trains, evaluates, registers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recops.columns import Columns
from recops.config import compose
from recops.paths import StagePaths
from recops.pipeline.register import register_stage
from recops.pipeline.stages import run_chain

from .conftest import PROJECT_ROOT, project_env, run, tiny_overrides

pytestmark = pytest.mark.integration
MODEL_NAME = "recops-recommender"
ALS_SMALL = {"model.factors": 16}


def test_entry_point_with_overrides_logs_one_run_and_a_usable_pyfunc(tmp_path: Path) -> None:
    env = project_env(tmp_path)
    overrides = tiny_overrides(
        tmp_path,
        **{"model.factors": 16, "split.test_fraction": 0.1, "seed": 7, "experiment": "standalone"},
    )
    run(
        [
            "python",
            "-m",
            "pipelines.train",
            "model=als",
            *overrides,
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        PROJECT_ROOT,
        env,
    )

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("standalone")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    logged = runs[0]
    assert logged.data.params["model.factors"] == "16"
    assert logged.data.params["split.test_fraction"] == "0.1"
    assert logged.data.params["seed"] == "7"
    assert logged.data.tags["model_type"] == "als"
    assert "plots/metrics_at_k.png" in {
        a.path for a in client.list_artifacts(logged.info.run_id, "plots")
    }
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.run_id == logged.info.run_id

    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    users = model.unwrap_python_model().recommender.users.external_ids[:2].tolist()
    out = model.predict(pd.DataFrame({Columns.user: users}), params={"k": 5})
    assert out.groupby(Columns.user)[Columns.rank].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 2


def test_gate_keeps_champion_and_rerun_creates_no_new_version(
    tmp_path: Path, mlflow_store: str
) -> None:
    first = run_chain(compose(tiny_overrides(tmp_path, model="als", **ALS_SMALL)))
    assert first["registry"]["promoted"]

    # popularity is far worse than ALS on the re-evaluated holdout: it stays candidate
    second = run_chain(compose(tiny_overrides(tmp_path, model="popularity")))
    reg = second["registry"]
    assert not reg["promoted"] and "does not beat" in reg["reason"]
    assert reg["champion_version"] == first["registry"]["version"]
    assert reg["champion_value"] == pytest.approx(first["metrics"]["ndcg_at_10"], rel=1e-6)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(MODEL_NAME, "candidate").version) == reg["version"]

    # registering the same run again is a no-op
    cfg = compose(tiny_overrides(tmp_path, model="popularity"))
    paths = StagePaths.from_config(cfg).standalone(cfg)
    again = register_stage(cfg, paths)
    assert again is not None and not again.created and again.version == reg["version"]
    assert len(client.search_model_versions(f"name='{MODEL_NAME}'")) == 2
    report = json.loads((paths.reports_dir / "registry.json").read_text())
    assert report["version"] == reg["version"]
    # standalone runs never write the DVC-tracked reports (paths.reports_dir)
    assert paths.reports_dir.parent == tmp_path / "cache"
    assert (paths.reports_dir / "metrics.json").exists()
    assert not (tmp_path / "reports" / "metrics.json").exists()
    assert not (tmp_path / "reports" / "registry.json").exists()


def test_a_better_model_takes_over_and_remembers_the_previous_champion(
    tmp_path: Path, mlflow_store: str
) -> None:
    first = run_chain(compose(tiny_overrides(tmp_path, model="popularity")))
    second = run_chain(compose(tiny_overrides(tmp_path, model="als", **ALS_SMALL)))
    reg = second["registry"]
    assert reg["promoted"] and reg["previous_champion"] == first["registry"]["version"]
    version = MlflowClient().get_model_version(MODEL_NAME, reg["version"])
    assert version.tags["recops.previous_champion"] == first["registry"]["version"]
    assert "champion" in version.aliases


def test_register_false_skips_registration(tmp_path: Path, mlflow_store: str) -> None:
    summary = run_chain(compose(tiny_overrides(tmp_path, model="popularity", register="false")))
    assert summary["registry"] == {"skipped": True}
    assert MlflowClient().search_registered_models() == []


@pytest.mark.parametrize("bad", ["model.factors=-1", "eval.ks=[0]", "data=events"])
def test_a_bad_config_is_one_clear_line_and_logs_nothing(bad: str, tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("data.")]
    cmd = ["python", "-m", "pipelines.train", *overrides, bad]
    cmd.append(f"hydra.run.dir={tmp_path / 'hydra'}")
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=project_env(tmp_path), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    key = bad.split("=")[0] if bad != "data=events" else "data.path"
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and key in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing was logged (not even a store made)
