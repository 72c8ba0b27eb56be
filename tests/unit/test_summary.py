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
