"""Promotion gates. Each takes a `GateContext` and returns a `GateResult(name, passed, detail)`.

Which gates run for which move is configured in `registry.gates` (see
`conf/registry/default.yaml`). Loading and evaluating are cached in the context, so the
`loads`, `smoke`, `metric`, `segments` and `coverage` gates load each model once and evaluate
it once on the holdout. A gate that raises fails with the error as its detail.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.columns import Columns
from recops.errors import RecopsError
from recops.evaluation.evaluate import EvaluationResult, evaluate_with_config
from recops.evaluation.sampling import SEGMENT_STRATA
from recops.evaluation.significance import paired_comparison
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.registry.comparison import (
    GateResult,
    MetricComparison,
    compare_metric,
    overlap_problem,
    paired_decision,
)
from recops.registry.holdout import locate_holdout
from recops.registry.settings import RegistrySettings
from recops.tracking.model_files import fetch_verified, recorded_manifest
from recops.tracking.pyfunc import predict_frame

SEGMENTS = ("light", "cold")
T = TypeVar("T")


@dataclass
class GateContext:
    """The version under test, the alias it moves to, and cached loads/evaluations."""

    client: MlflowClient
    settings: RegistrySettings
    cfg: DictConfig
    root: Path
    version: str
    alias: str
    aliases: dict[str, str]
    holdout: SplitData | None = None
    holdout_label: str = "this split"
    candidate_metrics: dict[str, float] | None = None
    comparison: MetricComparison | None = None
    _files: dict[str, Path | Exception] = field(default_factory=dict)
    _models: dict[str, Recommender | Exception] = field(default_factory=dict)
    _evaluations: dict[str, EvaluationResult] = field(default_factory=dict)
    _tmp: Path | None = None

    @property
    def name(self) -> str:
        return self.settings.model_name

    @property
    def champion(self) -> str | None:
        return self.aliases.get(self.settings.champion_alias)

    def files(self, version: str) -> Path:
        """The version's recommender files, downloaded once and checksum-verified (a failure
        is remembered and raised again)."""
        return _remembered(self._files, version, lambda: self._fetch(version))

    def _fetch(self, version: str) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="recops-gates-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
        dst = self._tmp / f"v{version}"
        dst.mkdir()
        return fetch_verified(self.client, self.name, version, dst)

    def recommender(self, version: str) -> Recommender:
        """The version's Recommender, read from its verified files by the installed code
        (nothing from the artifact store is executed)."""
        return _remembered(self._models, version, lambda: Recommender.load(self.files(version)))

    def split(self) -> SplitData:
        """The holdout: given (register stage), else the candidate run's features folder."""
        if self.holdout is None:
            run_id = self.client.get_model_version(self.name, self.version).run_id
            found = locate_holdout(self.client, self.cfg, str(run_id), self.root)
            self.holdout, self.holdout_label = found.split, found.label
        return self.holdout

    def evaluation(self, version: str) -> EvaluationResult:
        if version not in self._evaluations:
            result = evaluate_with_config(
                self.recommender(version), self.split(), self.cfg, with_baseline=False
            )
            self._evaluations[version] = result
        return self._evaluations[version]

    def candidate_metrics_now(self) -> dict[str, float]:
        """Headline metrics of the candidate on the holdout (given, or re-evaluated)."""
        if self.candidate_metrics is not None:
            return self.candidate_metrics
        return self.evaluation(self.version).metrics

    def champion_evaluation(self) -> tuple[EvaluationResult | None, str | None]:
        """The champion on the same holdout, or (None, why it could not be evaluated)."""
        champion = self.champion
        if champion is None:
            return None, "no champion"
        self.split()  # a missing holdout is the candidate's problem: raise it here
        try:
            return self.evaluation(champion), None
        except Exception as exc:  # an unloadable champion must not block a healthy candidate
            return None, f"champion v{champion} could not be loaded ({type(exc).__name__}: {exc})"


Gate = Callable[[GateContext], GateResult]


def _remembered(cache: dict[str, Any], version: str, build: Callable[[], T]) -> T:
    """`cache[version]`, built once; a failure is remembered and raised again (each gate
    asks, and a broken version must not be downloaded or loaded once per gate)."""
    if version not in cache:
        try:
            cache[version] = build()
        except Exception as exc:
            cache[version] = exc
    found = cache[version]
    if isinstance(found, Exception):
        raise found
    return found


def stage_gate(ctx: GateContext) -> GateResult:
    s = ctx.settings
    if ctx.alias != s.champion_alias:
        return GateResult("stage", True, f"no stage required before {ctx.alias}")
    challenger = ctx.aliases.get(s.challenger_alias)
    if challenger == ctx.version:
        return GateResult("stage", True, f"v{ctx.version} is the {s.challenger_alias}")
    now = f"{s.challenger_alias} is v{challenger}" if challenger else f"no {s.challenger_alias}"
    return GateResult(
        "stage",
        False,
        f"v{ctx.version} is not the {s.challenger_alias} ({now}); "
        f"promote it with --to {s.challenger_alias} first",
    )


def artifacts_gate(ctx: GateContext) -> GateResult:
    """The logged model holds a readable MLmodel, and every recommender file recorded at
    registration is there with its recorded sha256 (`required_files` among them)."""
    root = ctx.client.get_model_version_download_uri(ctx.name, ctx.version).rstrip("/")
    try:
        yaml.safe_load(mlflow.artifacts.load_text(f"{root}/MLmodel"))
    except Exception as exc:
        return GateResult("artifacts", False, f"no readable MLmodel ({type(exc).__name__})")
    recorded = recorded_manifest(ctx.client, ctx.name, ctx.version).files
    missing = [name for name in ctx.settings.required_files if name not in recorded]
    if missing:
        return GateResult("artifacts", False, f"not among the recorded files: {', '.join(missing)}")
    ctx.files(ctx.version)
    return GateResult(
        "artifacts", True, f"MLmodel and {len(recorded)} recommender files match their sha256"
    )


def loads_gate(ctx: GateContext) -> GateResult:
    start = time.perf_counter()
    rec = ctx.recommender(ctx.version)
    seconds = time.perf_counter() - start
    return GateResult(
        "loads",
        True,
        f"loaded {rec.model_type} ({len(rec.users)} users x {len(rec.items)} items) "
        f"in {seconds:.1f} s",
    )


def smoke_gate(ctx: GateContext) -> GateResult:
    """A few known users and one unknown user (popular fallback) through `predict`."""
    s = ctx.settings.smoke
    rec = ctx.recommender(ctx.version)
    known = [str(u) for u in rec.users.external_ids[: s.users]]
    batch = [*known, s.unknown_user]
    start = time.perf_counter()
    out = predict_frame(
        rec, pd.DataFrame({Columns.user: batch}), params={"k": s.k, "on_unknown": "popular"}
    )
    ms = (time.perf_counter() - start) * 1000
    if not isinstance(out, pd.DataFrame):
        return GateResult("smoke", False, f"predict returned {type(out).__name__}, not a frame")
    problems = _smoke_problems(out, batch, set(map(str, rec.items.external_ids)))
    if problems:
        return GateResult("smoke", False, "; ".join(problems))
    return GateResult(
        "smoke",
        True,
        f"{len(known)} known + 1 unknown user answered with top-{s.k} in {ms:.0f} ms",
    )


def _smoke_problems(out: pd.DataFrame, batch: list[str], items: set[str]) -> list[str]:
    problems = []
    for user in batch:
        rows = out[out[Columns.user] == user]
        if rows.empty:
            problems.append(f"no recommendations for {user!r}")
        elif rows[Columns.rank].tolist() != list(range(1, len(rows) + 1)):
            problems.append(f"ranks of {user!r} are not 1..{len(rows)}")
        elif not all(math.isfinite(v) for v in rows[Columns.score]):
            problems.append(f"non-finite scores for {user!r}")
        elif not set(map(str, rows[Columns.item])) <= items:
            problems.append(f"unknown item ids for {user!r}")
    return problems


def metric_gate(ctx: GateContext) -> GateResult:
    """The candidate vs the champion on `registry.metric`, both re-evaluated on the same
    holdout users, decided by `registry.decision` (margin | significant | non_inferior); a
    champion that knows too few of the holdout's users or items (another dataset) refuses."""
    s = ctx.settings
    if ctx.champion not in (None, ctx.version):
        refused = _overlap_refusal(ctx)
        if refused is not None:
            ctx.comparison = MetricComparison(None, champion_version=ctx.champion)
            return refused
        if s.decision != "margin":
            return _paired_metric_gate(ctx)

    def champion_score() -> tuple[float | None, str | None]:
        result, problem = ctx.champion_evaluation()
        return (None, problem) if result is None else (result.metrics.get(s.metric), None)

    candidate_value = None
    if ctx.champion not in (None, ctx.version):
        candidate_value = ctx.candidate_metrics_now().get(s.metric)
    elif ctx.candidate_metrics is not None:
        candidate_value = ctx.candidate_metrics.get(s.metric)
    gate, seen = compare_metric(
        s.metric,
        ctx.version,
        candidate_value,
        ctx.champion,
        champion_score,
        s.margin,
        s.margin_mode,
        ctx.holdout_label,
    )
    ctx.comparison = seen
    return gate


def _version_dataset(ctx: GateContext, version: str) -> str:
    try:
        return str((ctx.client.get_model_version(ctx.name, version).tags or {})["dataset"])
    except Exception:
        return "unknown"


def _overlap_refusal(ctx: GateContext) -> GateResult | None:
    """Refuse when the champion, evaluated on the candidate's holdout, knows too few of its
    users or items (an unloadable champion is handled by the comparison itself)."""
    champion = str(ctx.champion)
    result, _ = ctx.champion_evaluation()
    if result is None:
        return None
    problem = overlap_problem(
        result.sample.get("overlap"),
        ctx.settings.min_overlap,
        champion,
        _version_dataset(ctx, champion),
        _version_dataset(ctx, ctx.version),
        ctx.holdout_label,
    )
    return None if problem is None else GateResult("metric", False, problem)


def _paired_metric_gate(ctx: GateContext) -> GateResult:
    """`significant` / `non_inferior`: paired tests over the users both were evaluated on."""
    s, champion = ctx.settings, str(ctx.champion)
    champ, problem = ctx.champion_evaluation()
    if champ is None:
        ctx.comparison = MetricComparison(None, champion_version=champion, replaces=champion)
        return GateResult("metric", True, f"{problem}; candidate promoted")
    cand = ctx.evaluation(ctx.version)
    if cand.per_user is None or champ.per_user is None or s.metric not in cand.per_user.values:
        detail = f"no per-user {s.metric} to compare (policy {s.decision})"
        return GateResult("metric", False, detail)
    warm = np.isin(cand.per_user.strata, SEGMENT_STRATA["warm"])
    users = cand.per_user.users[warm]
    paired = paired_comparison(
        s.metric,
        cand.per_user.values[s.metric][warm],
        champ.per_user.aligned(users)[s.metric],
        cand.per_user.weights[warm],
        confidence=s.confidence,
        seed=int(ctx.cfg.get("seed", 0) or 0),
    )
    won, detail = paired_decision(
        s.decision, paired, champion, s.margin, s.margin_mode, s.alpha, ctx.holdout_label
    )
    ctx.comparison = MetricComparison(
        paired.mean_a, champion, paired.mean_b, champion if won else None, paired
    )
    return GateResult("metric", won, detail)


def segments_gate(ctx: GateContext) -> GateResult:
    """No light/cold segment worse than the champion's by more than the tolerance."""
    s = ctx.settings
    if ctx.champion in (None, ctx.version):
        return GateResult("segments", True, "no other champion to compare segments with")
    champ, problem = ctx.champion_evaluation()
    if champ is None:
        return GateResult("segments", True, f"{problem}; segments not compared")
    cand = ctx.evaluation(ctx.version)
    common = [n for n in SEGMENTS if n in cand.segments and n in champ.segments]
    if not common:
        return GateResult("segments", True, "no light or cold users on this holdout")
    parts, worse = [], []
    for name in common:
        c = cand.segments[name].get(s.metric, math.nan)
        h = champ.segments[name].get(s.metric, math.nan)
        parts.append(f"{name} {s.metric} {c:.4f} vs champion {h:.4f}")
        if not c >= h - s.segment_tolerance:
            worse.append(name)
    tolerance = f"(tolerance {s.segment_tolerance})"
    if worse:
        detail = f"{', '.join(worse)} worse than champion v{ctx.champion}: " + "; ".join(parts)
        return GateResult("segments", False, f"{detail} {tolerance}")
    return GateResult("segments", True, f"{'; '.join(parts)} {tolerance}")


def coverage_gate(ctx: GateContext) -> GateResult:
    s = ctx.settings
    if s.min_coverage is None:
        return GateResult("coverage", True, "no minimum set (registry.min_coverage)")
    value = ctx.candidate_metrics_now().get(s.coverage_metric)
    if value is None or not math.isfinite(value):
        return GateResult("coverage", False, f"no {s.coverage_metric} measured")
    verdict = ">=" if value >= s.min_coverage else "<"
    detail = f"{s.coverage_metric}={value:.4f} {verdict} minimum {s.min_coverage}"
    return GateResult("coverage", value >= s.min_coverage, detail)


GATES: dict[str, Gate] = {
    "stage": stage_gate,
    "artifacts": artifacts_gate,
    "loads": loads_gate,
    "smoke": smoke_gate,
    "metric": metric_gate,
    "segments": segments_gate,
    "coverage": coverage_gate,
}


def run_gate(name: str, ctx: GateContext) -> GateResult:
    try:
        return GATES[name](ctx)
    except RecopsError as exc:
        return GateResult(name, False, str(exc))
    except Exception as exc:
        return GateResult(name, False, f"{type(exc).__name__}: {exc}")


def run_gates(names: list[str], ctx: GateContext) -> list[GateResult]:
    """Every named gate, in order (all run, so the audit shows every result)."""
    return [run_gate(name, ctx) for name in names]


def failed(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


def as_dicts(results: list[GateResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]
