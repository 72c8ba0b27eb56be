"""A readable summary of the last pipeline run: headline metrics beside the baseline, and
what the registry did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recops.console import escape
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
    intervals = metrics.get("intervals") or {}
    for name in HEADLINE:
        cells = []
        for k in ks:
            key = f"{name}_at_{k}"
            cells.append(_with_interval(metrics.get("model", {}).get(key), intervals.get(key)))
            value = metrics.get("baseline", {}).get(key)
            cells.append("–" if value is None else f"{value:.4f}")
        table.add_row(name, *cells)
    return table


def _with_interval(value: float | None, interval: list[float | None] | None) -> str:
    """`0.1496 [0.1401, 0.1590]` (the 95% bootstrap interval), or the value alone."""
    if value is None:
        return "–"
    if interval and all(isinstance(b, int | float) for b in interval):
        return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"
    return f"{value:.4f}"


def evidence_lines(metrics: dict[str, Any]) -> list[str]:
    """How many users the metrics rest on, and the paired tests against the baseline."""
    lines = []
    sample = metrics.get("sample") or {}
    if sample:
        how = "a seeded stratified sample of" if sample.get("sampled") else "all"
        lines.append(
            f"evaluated on {how} {sample.get('n_evaluated')} of {sample.get('n_test_users')} "
            "test users; [low, high] = 95% bootstrap interval over users"
        )
    for key, cmp in (metrics.get("vs_baseline") or {}).items():
        if not isinstance(cmp, dict) or cmp.get("diff") is None:
            continue
        lines.append(
            f"{key} vs popularity on the same users: diff {cmp['diff']:+.4f} "
            f"[{_num(cmp.get('ci_low'))}, {_num(cmp.get('ci_high'))}], "
            f"Wilcoxon p={_num(cmp.get('p_wilcoxon'), '.3g')}, "
            f"bootstrap p={_num(cmp.get('p_bootstrap'), '.3g')}, "
            f"effect size d_z={_num(cmp.get('effect_size'), '+.3f')}"
        )
    return lines


def _num(value: Any, fmt: str = "+.4f") -> str:
    return "–" if not isinstance(value, int | float) else format(value, fmt)


def print_summary(reports_dir: Path, console: Console) -> None:
    metrics = _read(reports_dir / "metrics.json")
    console.print(metrics_table(metrics))
    for line in evidence_lines(metrics):
        console.print(escape(line))
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
