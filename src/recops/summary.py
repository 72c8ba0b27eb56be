"""A readable summary of the last pipeline run: headline metrics beside the baseline, and
what the registry did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recops.errors import RecopsError

HEADLINE = ("ndcg", "recall", "precision", "map", "mrr", "hit_rate", "coverage", "novelty")


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RecopsError(f"{path} does not exist: run the pipeline first (`dvc repro`)")
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def metrics_table(metrics: dict[str, Any], ks: tuple[int, ...] = (5, 10, 20)) -> Table:
    model = metrics.get("model_type", "model")
    table = Table(title=f"{model} vs popularity (warm users)")
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k} {model}", justify="right")
        table.add_column(f"@{k} popularity", justify="right", style="dim")
    for name in HEADLINE:
        cells = []
        for k in ks:
            key = f"{name}_at_{k}"
            for part in ("model", "baseline"):
                value = metrics.get(part, {}).get(key)
                cells.append("–" if value is None else f"{value:.4f}")
        table.add_row(name, *cells)
    return table


def print_summary(reports_dir: Path, console: Console) -> None:
    metrics = _read(reports_dir / "metrics.json")
    console.print(metrics_table(metrics))
    registry_file = reports_dir / "registry.json"
    if registry_file.exists():
        registry = _read(registry_file)
        if registry.get("skipped"):
            console.print("registry: skipped (register=false)")
        else:
            aliases = ", ".join(registry.get("aliases", [])) or "none"
            console.print(
                f"registry: {registry['model_name']} v{registry['version']} "
                f"(aliases: {aliases}) — {registry['reason']}"
            )
