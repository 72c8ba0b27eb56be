"""What a registered version carries for comparison in the MLflow UI: a markdown description
with its metrics (model vs popularity baseline, segments) and provenance, and a run tag
`registered_model_version` = `<name>/<version>` linking the run back to its version."""

from __future__ import annotations

import math

from mlflow.tracking import MlflowClient

from recops.registry.versions import run_view

RUN_VERSION_TAG = "registered_model_version"
SUMMARY_METRICS = (
    "ndcg_at_10",
    "recall_at_10",
    "precision_at_10",
    "map_at_10",
    "hit_rate_at_10",
    "coverage_at_10",
    "novelty_at_10",
)


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _interval(metrics: dict[str, float], name: str) -> str:
    low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    if low is None or high is None:
        return ""
    return f" [{_fmt(low)}, {_fmt(high)}]"


def describe_version(
    tags: dict[str, str], metrics: dict[str, float], run_id: str, headline: str
) -> str:
    """Markdown for the version page: provenance line, metric table, segments."""
    model = tags.get("model_type", "?")
    snapshot = tags.get("data_snapshot", "?")[:8]
    commit = tags.get("git_commit", "?")[:12]
    lines = [
        f"**{model}** on `{tags.get('dataset', '?')}` (snapshot `{snapshot}`, split "
        f"`{tags.get('split', '?')}`), commit `{commit}`, run `{run_id}`.",
        "",
        "| metric | model [95% CI] | popularity baseline |",
        "|---|---:|---:|",
    ]
    names = [headline, *[m for m in SUMMARY_METRICS if m != headline]]
    lines += [
        f"| {m} | {_fmt(metrics.get(m))}{_interval(metrics, m)} "
        f"| {_fmt(metrics.get(f'baseline_{m}'))} |"
        for m in names
        if m in metrics
    ]
    paired = f"vs_baseline_{headline}"
    if f"{paired}_diff" in metrics:
        lines += [
            "",
            f"Paired vs popularity on the same users ({headline}): diff "
            f"{metrics[f'{paired}_diff']:+.4f}, Wilcoxon p="
            f"{metrics.get(f'{paired}_p_wilcoxon', math.nan):.3g}, bootstrap p="
            f"{metrics.get(f'{paired}_p_bootstrap', math.nan):.3g}.",
        ]
    if "eval_users" in metrics and "eval_test_users" in metrics:
        lines += [
            "",
            f"Evaluated on {int(metrics['eval_users'])} of {int(metrics['eval_test_users'])} "
            "test users (CI: bootstrap over users).",
        ]
    segments = [
        f"{seg} {_fmt(metrics.get(f'{seg}_{headline}'))}"
        for seg in ("light", "cold")
        if f"{seg}_{headline}" in metrics
    ]
    if segments:
        lines += ["", f"Segments ({headline}): " + ", ".join(segments)]
    return "\n".join(lines)


def annotate_version(
    client: MlflowClient, name: str, version: str, run_id: str, headline: str
) -> None:
    """Description on the version, `registered_model_version` tag on its run."""
    view = run_view(client, run_id)
    client.update_model_version(
        name, version, description=describe_version(view.tags, view.metrics, run_id, headline)
    )
    client.set_tag(run_id, RUN_VERSION_TAG, f"{name}/{version}")
