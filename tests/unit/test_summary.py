import json
from pathlib import Path

import pytest
from rich.console import Console

from recops.errors import RecopsError
from recops.summary import print_summary


def test_summary_shows_metrics_and_registry_decision(tmp_path: Path) -> None:
    metrics = {"model_type": "als", "model": {"ndcg_at_10": 0.2}, "baseline": {"ndcg_at_10": 0.1}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    registry = {"model_name": "m", "version": "3", "aliases": ["candidate"], "reason": "why"}
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    console = Console(record=True, width=200)
    print_summary(tmp_path, console)
    text = console.export_text()
    assert "0.2000" in text and "0.1000" in text and "m v3 (aliases: candidate) — why" in text


def test_summary_before_any_run_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RecopsError, match="run the pipeline first"):
        print_summary(tmp_path, Console())


def test_summary_shows_intervals_sample_and_paired_test(tmp_path: Path) -> None:
    metrics = {
        "model_type": "ease",
        "model": {"ndcg_at_10": 0.2},
        "intervals": {"ndcg_at_10": [0.18, 0.22]},
        "baseline": {"ndcg_at_10": 0.1},
        "sample": {"n_evaluated": 500, "n_test_users": 9000, "sampled": True},
        "vs_baseline": {
            "ndcg_at_10": {
                "diff": 0.1,
                "ci_low": 0.08,
                "ci_high": 0.12,
                "p_wilcoxon": 0.0002,
                "p_bootstrap": 0.001,
                "effect_size": 0.4,
            }
        },
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    console = Console(record=True, width=300)
    print_summary(tmp_path, console)
    text = console.export_text()
    assert "0.2000 [0.1800, 0.2200]" in text
    assert "a seeded stratified sample of 500 of 9000 test users" in text
    assert "diff +0.1000 [+0.0800, +0.1200], Wilcoxon p=0.0002" in text
