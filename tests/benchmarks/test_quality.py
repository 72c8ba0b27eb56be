"""Quality of every configured model on MovieLens ml-latest-small, default split.

Writes reports/benchmarks/quality.md (and .json). Untuned models use their conf/model
defaults; tuned rows come from sweep summaries under reports/sweeps/ when present.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from recops.config import compose
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.context import StagePaths
from recops.pipeline.evaluate import evaluate_with_config
from recops.pipeline.prepare import features_stage, ingest_stage
from recops.pipeline.train import build_model

from .conftest import ML_SMALL, PROJECT_ROOT, RESULTS

MODELS = sorted(p.stem for p in (PROJECT_ROOT / "conf" / "model").glob("*.yaml"))
COLUMNS = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage_at_10")


def prepare(tmp: Path) -> SplitData:
    cfg = compose(
        [
            "data=movielens_small",
            f"data.source.local_dir={ML_SMALL}",
            f"paths.duckdb={tmp / 'db.duckdb'}",
            f"paths.snapshot_dir={tmp / 'snap'}",
            f"paths.features_dir={tmp / 'features'}",
        ]
    )
    paths = StagePaths.from_config(cfg)
    ingest_stage(cfg, paths)
    return features_stage(cfg, paths)


def measure(model_name: str, split: SplitData, overrides: list[str]) -> dict[str, Any]:
    cfg = compose(["data=movielens_small", f"model={model_name}", *overrides])
    model = build_model(cfg)
    start = time.perf_counter()
    model.fit(split.train)
    fit_time = time.perf_counter() - start
    result = evaluate_with_config(
        Recommender.from_training(model, split.train), split, cfg, with_baseline=False
    )
    return {**{c: result.metrics[c] for c in COLUMNS}, "fit_time_s": fit_time}


def tuned_rows() -> dict[str, dict[str, Any]]:
    """Best test metrics of finished sweeps on MovieLens (reports/sweeps/*/summary.json)."""
    rows: dict[str, dict[str, Any]] = {}
    for summary in sorted((PROJECT_ROOT / "reports" / "sweeps").glob("*/summary.json")):
        data = json.loads(summary.read_text())
        if "movielens" not in str(data.get("study_name", "")) or not data.get("test_metrics"):
            continue
        trials = sum(data.get("trials", {}).values())
        rows[f"{data['model']} (tuned, {trials} trials)"] = {
            **{c: data["test_metrics"].get(f"test_{c}") for c in COLUMNS},
            "fit_time_s": data["test_metrics"].get("test_fit_time_s"),
        }
    return rows


def render(rows: dict[str, dict[str, Any]]) -> str:
    head = "| model | NDCG@10 | Recall@10 | MAP@10 | coverage@10 | fit time (s) |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, r in sorted(rows.items(), key=lambda kv: -(kv[1]["ndcg_at_10"] or 0)):
        cells = [f"{r[c]:.4f}" if r[c] is not None else "–" for c in COLUMNS]
        fit = f"{r['fit_time_s']:.2f}" if r["fit_time_s"] is not None else "–"
        lines.append(f"| {name} | {' | '.join(cells)} | {fit} |")
    return "\n".join(lines)


@pytest.mark.skipif(not ML_SMALL.is_dir(), reason=f"MovieLens not found at {ML_SMALL}")
def test_quality_table(tmp_path: Path) -> None:
    split = prepare(tmp_path)
    rows = {name: measure(name, split, []) for name in MODELS}
    rows.update(tuned_rows())
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = render(rows)
    header = (
        "# Quality on MovieLens ml-latest-small\n\nPer-user temporal 80/20 split (last 20% "
        "of each user's ratings), ratings as implicit positives, seen items excluded, "
        "warm users. 2 cores.\n\n"
    )
    (RESULTS / "quality.md").write_text(header + table + "\n")
    (RESULTS / "quality.json").write_text(json.dumps(rows, indent=2))
    print("\n" + table)
    assert rows["popularity"]["ndcg_at_10"] < max(r["ndcg_at_10"] for r in rows.values())
