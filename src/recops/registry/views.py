"""What `recops registry list` and `recops registry diff` show, as data and as rich tables."""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass

import pandas as pd
from mlflow.tracking import MlflowClient
from rich.table import Table

from recops.columns import Columns
from recops.evaluation.significance import PairedComparison, paired_comparison
from recops.registry import history as hist
from recops.registry.holdout import FEATURES_HASH_TAG
from recops.registry.settings import RegistrySettings
from recops.registry.versions import (
    ARCHIVED_TAG,
    RunView,
    alias_map,
    aliases_by_version,
    all_versions,
    require_version,
    run_view,
)

COMPARED_TAGS = ("model_type", "dataset", "data_snapshot", "split", "git_commit")


@dataclass(frozen=True)
class VersionRow:
    version: str
    model_type: str
    metrics: dict[str, float | None]
    snapshot: str
    aliases: list[str]
    age: str
    note: str


def age(created_ms: int | None, now: float | None = None) -> str:
    """`45s`, `12m`, `3h`, `5d` since a millisecond timestamp."""
    if not created_ms:
        return "?"
    seconds = max(0.0, (now or time.time()) - created_ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def version_rows(
    client: MlflowClient, settings: RegistrySettings, show_archived: bool, limit: int
) -> list[VersionRow]:
    """Newest first; archived versions only with `show_archived`."""
    name = settings.model_name
    by_version = aliases_by_version(alias_map(client, name))
    past = set(hist.read_history(client, name))
    rows = []
    for found in all_versions(client, name):
        tags = found.tags or {}
        archived = ARCHIVED_TAG in tags
        if archived and not show_archived:
            continue
        version = str(found.version)
        metrics = run_view(client, found.run_id).metrics
        notes = [f"archived {tags[ARCHIVED_TAG][:10]}"] if archived else []
        if version in past:
            notes.append("past champion")
        rows.append(
            VersionRow(
                version=version,
                model_type=tags.get("model_type", "?"),
                metrics={m: metrics.get(m) for m in settings.list_metrics},
                snapshot=tags.get("data_snapshot", "?")[:8],
                aliases=by_version.get(version, []),
                age=age(found.creation_timestamp),
                note=", ".join(notes),
            )
        )
        if len(rows) >= limit:
            break
    return rows


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


def list_table(rows: list[VersionRow], settings: RegistrySettings) -> Table:
    table = Table(title=f"{settings.model_name} (newest first)")
    table.add_column("version", justify="right", style="bold")
    table.add_column("model")
    for metric in settings.list_metrics:
        table.add_column(metric, justify="right")
    for column in ("snapshot", "aliases", "age", "note"):
        table.add_column(column)
    for row in rows:
        aliases = " ".join(f"@{a}" for a in row.aliases)
        metrics = [_fmt(row.metrics.get(m)) for m in settings.list_metrics]
        table.add_row(
            f"v{row.version}", row.model_type, *metrics, row.snapshot, aliases, row.age, row.note
        )
    return table


@dataclass(frozen=True)
class Diff:
    a: str
    b: str
    tags: list[tuple[str, str, str]]
    params: list[tuple[str, str, str]]
    metrics: list[tuple[str, float | None, float | None]]
    same_params: int
    #: b vs a on the users both were evaluated on (same holdout), from the logged per-user
    #: metrics; `paired_note` says why there is none.
    paired: tuple[PairedComparison, ...] = ()
    paired_note: str = ""


PAIRED_METRICS = ("ndcg_at_10", "recall_at_10")
PER_USER_ARTIFACT = "evaluation/per_user_model.parquet"


def per_user_frame(client: MlflowClient, run_id: str | None) -> pd.DataFrame | None:
    """The per-user metrics a run logged at evaluation, or None (older run, no artifact)."""
    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, PER_USER_ARTIFACT, tmp)
            return pd.read_parquet(path)
    except Exception:
        return None


def paired_versions(
    client: MlflowClient, ra: RunView, rb: RunView, run_a: str | None, run_b: str | None
) -> tuple[tuple[PairedComparison, ...], str]:
    """Paired tests of b vs a over the users both runs evaluated, when both evaluated on the
    same holdout (same `recops.features_hash`)."""
    ha, hb = ra.tags.get(FEATURES_HASH_TAG), rb.tags.get(FEATURES_HASH_TAG)
    if not ha or ha != hb:
        return (), (
            "no paired test: the versions were evaluated on different holdouts "
            f"(features {str(ha)[:8]} vs {str(hb)[:8]}); `recops promote` re-evaluates both "
            "on the candidate's holdout"
        )
    fa, fb = per_user_frame(client, run_a), per_user_frame(client, run_b)
    if fa is None or fb is None:
        return (), "no paired test: a run has no per-user metrics (evaluated before they were kept)"
    both = fa.merge(fb, on=Columns.user, suffixes=("_a", "_b"))
    warm = both["stratum_a"].isin(["heavy", "light"]).to_numpy()
    both = both[warm]
    out = [
        paired_comparison(
            m, both[f"{m}_b"].to_numpy(), both[f"{m}_a"].to_numpy(), both["weight_a"].to_numpy()
        )
        for m in PAIRED_METRICS
        if f"{m}_a" in both and f"{m}_b" in both
    ]
    return tuple(out), "" if out else "no paired test: no shared users"


def diff_versions(
    client: MlflowClient, name: str, ref_a: str, ref_b: str, all_params: bool
) -> Diff:
    """Tags, params (only differing ones unless `all_params`) and metrics of two versions."""
    va, vb = require_version(client, name, ref_a), require_version(client, name, ref_b)
    ra, rb = run_view(client, va.run_id), run_view(client, vb.run_id)
    tags_a, tags_b = {**ra.tags, **(va.tags or {})}, {**rb.tags, **(vb.tags or {})}
    tags = [(k, tags_a.get(k, "–"), tags_b.get(k, "–")) for k in COMPARED_TAGS]
    keys = sorted(set(ra.params) | set(rb.params))
    params = [(k, ra.params.get(k, "–"), rb.params.get(k, "–")) for k in keys]
    differing = [p for p in params if p[1] != p[2]]
    metrics = [
        (k, ra.metrics.get(k), rb.metrics.get(k)) for k in sorted(set(ra.metrics) | set(rb.metrics))
    ]
    paired, note = paired_versions(client, ra, rb, va.run_id, vb.run_id)
    return Diff(
        str(va.version),
        str(vb.version),
        tags,
        params if all_params else differing,
        metrics,
        0 if all_params else len(params) - len(differing),
        paired,
        note,
    )


def diff_tables(diff: Diff) -> list[Table]:
    a, b = f"v{diff.a}", f"v{diff.b}"
    tags = Table(title=f"{a} vs {b}: provenance")
    hidden = f" ({diff.same_params} identical not shown, --all shows them)"
    params = Table(title=f"params{hidden if diff.same_params else ''}")
    metrics = Table(title="metrics")
    for table, key in ((tags, "tag"), (params, "param"), (metrics, "metric")):
        table.add_column(key)
        table.add_column(a, justify="right")
        table.add_column(b, justify="right")
    metrics.add_column(f"{b} − {a}", justify="right")
    for row in diff.tags:
        tags.add_row(*row, style=None if row[1] == row[2] else "yellow")
    for row in diff.params:
        params.add_row(*row, style=None if row[1] == row[2] else "yellow")
    for key, x, y in diff.metrics:
        delta = y - x if x is not None and y is not None else None
        metrics.add_row(key, _fmt(x), _fmt(y), "–" if delta is None else f"{delta:+.4f}")
    return [tags, params, metrics, paired_table(diff)]


def paired_table(diff: Diff) -> Table:
    """b vs a on the same users: difference with its CI, p-values, effect size."""
    a, b = f"v{diff.a}", f"v{diff.b}"
    table = Table(title=f"paired: {b} vs {a} on the same users", caption=diff.paired_note or None)
    for column in ("metric", a, b, f"{b} − {a}", "95% CI", "Wilcoxon p", "bootstrap p", "d_z"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for p in diff.paired:
        table.add_row(
            p.metric,
            _fmt(p.mean_b),
            _fmt(p.mean_a),
            f"{p.diff:+.4f}",
            f"[{p.ci_low:+.4f}, {p.ci_high:+.4f}]",
            f"{p.p_wilcoxon:.3g}",
            f"{p.p_bootstrap:.3g}",
            f"{p.effect_size:+.3f} (n={p.n_users})",
        )
    return table
