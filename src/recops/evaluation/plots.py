"""Metric-at-k curves per model: PNG figure, long table and wide (DVC plots) table.

``results`` maps a model label (``"als"``, ``"popularity"``, ...) to a flat metrics dict whose
keys look like ``"ndcg_at_10"`` (see ``metrics.metric_key``); other keys are ignored.
Figures are drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas), so pyplot's global state
and the process-wide backend are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

Results = Mapping[str, Mapping[str, float]]

LONG_COLUMNS: Final = ("model", "k", "metric", "value")
_KEY_RE: Final = re.compile(r"^(?P<metric>.+)_at_(?P<k>\d+)$")


def metrics_at_k_table(results: Results, metric_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table ``model, k, metric, value``, sorted by model, metric, k.

    Only keys ``<metric>_at_<k>`` with ``metric`` in ``metric_names`` are kept (all if None).
    """
    wanted = None if metric_names is None else set(metric_names)
    rows = []
    for model, metrics in results.items():
        for key, value in metrics.items():
            parsed = _parse_key(key)
            if parsed is not None and (wanted is None or parsed[0] in wanted):
                rows.append((model, parsed[1], parsed[0], float(value)))
    table = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    table["k"] = table["k"].astype("int64")
    table["value"] = table["value"].astype("float64")
    return table.sort_values(["model", "metric", "k"], ignore_index=True)


def metrics_at_k_wide(results: Results, metric_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide table: column ``k`` then one column ``<model>_<metric>`` per pair, one row per k.

    Suited to a DVC plots CSV with ``x: k``. A missing (model, metric, k) value is NaN.
    """
    long = metrics_at_k_table(results, metric_names)
    if long.empty:
        return pd.DataFrame({"k": pd.Series(dtype="int64")})
    long["column"] = long["model"] + "_" + long["metric"]
    wide = long.pivot_table(index="k", columns="column", values="value", aggfunc="first")
    wide = wide.reindex(columns=sorted(wide.columns)).reset_index()
    wide.columns.name = None
    return wide


def plot_metrics_at_k(results: Results, metric_names: Sequence[str], out_path: Path) -> Path:
    """Save a PNG with one subplot per metric (x = k, one line per model); return ``out_path``."""
    if not metric_names:
        raise ValueError("metric_names must name at least one metric")
    long = metrics_at_k_table(results, metric_names)
    n_cols = min(3, len(metric_names))
    n_rows = -(-len(metric_names) // n_cols)
    fig = Figure(figsize=(4.5 * n_cols, 3.5 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metric_names, strict=False):
        _draw_metric(ax, long[long["metric"] == metric], metric)
    for ax in axes[len(metric_names) :]:
        ax.set_visible(False)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format="png", dpi=100)
    return out_path


def _draw_metric(ax: Axes, rows: pd.DataFrame, metric: str) -> None:
    """One line per model of ``metric`` against k on ``ax``."""
    for model, group in rows.groupby("model", sort=True):
        ax.plot(group["k"], group["value"], marker="o", label=str(model))
    ax.set_title(metric)
    ax.set_xlabel("k")
    ax.grid(True, alpha=0.3)
    if rows.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_xticks(sorted(rows["k"].unique()))
        ax.legend(fontsize="small")


def _parse_key(key: str) -> tuple[str, int] | None:
    """``"ndcg_at_10"`` -> ``("ndcg", 10)``; None for keys without an ``_at_<k>`` suffix."""
    match = _KEY_RE.match(key)
    return None if match is None else (match["metric"], int(match["k"]))
