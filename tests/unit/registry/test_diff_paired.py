"""`recops registry diff A B` pairs the two versions on the users both were evaluated on
(a real MLflow store; the per-user metrics as the evaluate stage logs them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from rich.console import Console

from recops.columns import Columns
from recops.registry.holdout import FEATURES_HASH_TAG
from recops.registry.views import PER_USER_ARTIFACT, diff_tables, diff_versions


def log_version(client: MlflowClient, tmp: Path, exp: str, ndcg: np.ndarray, features: str) -> None:
    run = client.create_run(exp, tags={FEATURES_HASH_TAG: features, "dataset": "synthetic"})
    users = [f"u{i}" for i in range(len(ndcg))]
    frame = pd.DataFrame(
        {Columns.user: users, "stratum": "heavy", "weight": 1.0, "ndcg_at_10": ndcg}
    )
    folder = tmp / run.info.run_id
    folder.mkdir()
    frame.assign(recall_at_10=ndcg).to_parquet(folder / Path(PER_USER_ARTIFACT).name)
    client.log_artifact(run.info.run_id, str(folder / Path(PER_USER_ARTIFACT).name), "evaluation")
    client.log_metric(run.info.run_id, "ndcg_at_10", float(ndcg.mean()))
    client.set_terminated(run.info.run_id)
    client.create_model_version("m", source=str(folder), run_id=run.info.run_id)


def test_diff_shows_the_paired_test_on_shared_users(registry_store: str, tmp_path: Path) -> None:
    client = MlflowClient()
    exp = client.create_experiment("e")
    client.create_registered_model("m")
    rng = np.random.default_rng(0)
    base = rng.beta(0.5, 3.0, size=300)
    log_version(client, tmp_path, exp, base, "aaaa")
    log_version(client, tmp_path, exp, base + 0.05 + rng.normal(0, 0.02, 300), "aaaa")
    log_version(client, tmp_path, exp, base, "bbbb")  # another holdout
    diff = diff_versions(client, "m", "1", "2", all_params=False)
    assert [p.metric for p in diff.paired] == ["ndcg_at_10", "recall_at_10"]
    paired = diff.paired[0]
    assert paired.n_users == 300 and paired.diff > 0.04 and paired.p_wilcoxon < 1e-6
    console = Console(record=True, width=250)
    for table in diff_tables(diff):
        console.print(table)
    text = console.export_text()
    assert "paired: v2 vs v1 on the same users" in text and "Wilcoxon p" in text
    other = diff_versions(client, "m", "1", "3", all_params=False)
    assert other.paired == () and "different holdouts" in other.paired_note
