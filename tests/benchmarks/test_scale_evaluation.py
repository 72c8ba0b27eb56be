"""Evaluation alone at 1M users: exact vs sampled (`eval.max_users`), against the ALS fit.

One synthetic world (the embedded generator, split in time, no DuckDB ingest: evaluation is
what is measured), one ALS fit (64 factors, 15 iterations, 2 threads) timed as the yardstick,
then in the same process:

* the top-k kernel on a block of users: the former single-threaded `argpartition` path, the
  block-max path on 1 and 2 threads, and implicit's fused `topk` for reference;
* `evaluate` with every test user (exact) and with a seeded sample of `SAMPLE` users, model and
  popularity baseline, with the headline metric, its 95% CI and its width;
* the sampler over `COVERAGE_SEEDS` seeds, from the exact run's per-user values (the same
  values a sampled run computes for its users): the mean and spread of the sampled estimates
  against the exact value (bias), and the share of the seeds whose 95% bootstrap CI
  (`COVERAGE_REPLICATES` replicates) holds the exact value (coverage). One seed's interval
  misses the exact value 5% of the time by design: coverage, not one seed, is the check.

Sizes: `RECOPS_BENCH_EVAL_USERS` / `_ITEMS` / `_EVENTS` (default 1M / 50k / 10M).
Writes reports/benchmarks/scale_evaluation.md (and .json).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recops.data.sources.synthetic import SyntheticSource
from recops.evaluation.evaluate import EvaluationResult, evaluate
from recops.evaluation.sampling import SEGMENT_STRATA, sample_users
from recops.evaluation.settings import EvalSettings
from recops.evaluation.uncertainty import confidence_intervals
from recops.features.build import build_split
from recops.features.dataset import SplitData
from recops.features.split import TimeSplit
from recops.models.als import ALSModel
from recops.models.recommender import Recommender
from recops.models.topk import chunked_top_k, mask_seen, partition_top_k, top_k

from .conftest import RESULTS

USERS = int(os.environ.get("RECOPS_BENCH_EVAL_USERS", 1_000_000))
ITEMS = int(os.environ.get("RECOPS_BENCH_EVAL_ITEMS", 50_000))
EVENTS = int(os.environ.get("RECOPS_BENCH_EVAL_EVENTS", 10_000_000))
SAMPLE = int(EvalSettings().max_users or 0)  # the default `eval.max_users`
KERNEL_USERS = 4_000
THREADS = 2
WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0}
METRIC = "ndcg_at_10"
COVERAGE_SEEDS = 100
COVERAGE_REPLICATES = 200


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def world() -> SplitData:
    raw = SyntheticSource(n_users=USERS, n_items=ITEMS, n_events=EVENTS).load()
    return build_split(raw.events, raw.items, TimeSplit(0.2), WEIGHTS)


def kernel_rows(model: ALSModel, split: SplitData) -> list[dict[str, Any]]:
    """Top-10 of KERNEL_USERS users by each top-k path (scoring included)."""
    users = np.arange(min(KERNEL_USERS, split.train.n_users))
    user_f, item_f = model._factors()
    seen = split.train.user_items

    def scored(chunk: np.ndarray) -> np.ndarray:
        s = np.asarray(user_f[chunk] @ item_f.T, dtype=np.float32)
        mask_seen(s, seen, chunk)
        return s

    def path(select: Callable[..., Any], threads: int) -> Any:
        return chunked_top_k(
            users, 10, split.train.n_items, lambda c: select(scored(c), 10), threads
        )

    def implicit_topk() -> Any:
        from implicit.cpu.topk import topk

        return topk(item_f, user_f[users], 10, filter_query_items=seen[users], num_threads=THREADS)

    rows = []
    reference = None
    for label, fn in (
        ("argpartition (previous), 1 thread", lambda: path(partition_top_k, 1)),
        ("block-max (exact), 1 thread", lambda: path(top_k, 1)),
        (f"block-max (exact), {THREADS} threads", lambda: path(top_k, THREADS)),
        (f"implicit.cpu.topk (ties in heap order), {THREADS} threads", implicit_topk),
    ):
        out, seconds = timed(fn)
        if reference is None:
            reference = out[0]
        same = bool(np.array_equal(out[0], reference)) if "implicit" not in label else None
        rows.append({"path": label, "seconds": seconds, "equal_to_previous": same})
    return rows


def evaluation_row(
    rec: Recommender, split: SplitData, max_users: int | None
) -> tuple[dict[str, Any], EvaluationResult]:
    settings = EvalSettings(max_users=max_users, threads=THREADS, seed=42)
    result, seconds = timed(lambda: evaluate(rec, split, settings=settings))
    low, high = result.intervals[METRIC]
    paired = result.vs_baseline[METRIC]
    return {
        "max_users": max_users,
        "seconds": seconds,
        "evaluated": result.sample["n_evaluated"],
        "test_users": result.sample["n_test_users"],
        "value": result.metrics[METRIC],
        "ci_low": low,
        "ci_high": high,
        "ci_width": high - low,
        "baseline": result.baseline[METRIC],
        "p_wilcoxon": paired.p_wilcoxon,
        "peak_rss_mb": peak_rss_mb(),
    }, result


def sampler_coverage(exact: EvaluationResult, value: float) -> dict[str, Any]:
    """The sampled estimate and its CI for `COVERAGE_SEEDS` seeds, from the exact run's
    per-user values (warm users, the headline), against the exact `value`."""
    assert exact.per_user is not None
    settings = EvalSettings()
    strata, values = exact.per_user.strata, exact.per_user.values[METRIC]
    means, hits = [], 0
    for seed in range(COVERAGE_SEEDS):
        sample = sample_users(strata, SAMPLE, settings.min_segment_users, seed)
        picked = values[sample.index]
        warm = np.isin(sample.strata, SEGMENT_STRATA["warm"]) & np.isfinite(picked)
        x, w = picked[warm], sample.weights[warm]
        means.append(float(np.average(x, weights=w)))
        low, high = confidence_intervals(
            {METRIC: x}, w, COVERAGE_REPLICATES, settings.confidence, seed
        )[METRIC]
        hits += low <= value <= high
    return {
        "seeds": COVERAGE_SEEDS,
        "mean": float(np.mean(means)),
        "sd": float(np.std(means, ddof=1)),
        "min": float(np.min(means)),
        "max": float(np.max(means)),
        "coverage": hits / COVERAGE_SEEDS,
    }


def test_evaluation_at_a_million_users() -> None:
    split, build_s = timed(world)
    model = ALSModel(factors=64, iterations=15, num_threads=THREADS, show_progress=False)
    _, fit_s = timed(lambda: model.fit(split.train))
    rec = Recommender.from_training(model, split.train)
    kernel = kernel_rows(model, split)
    sampled, _ = evaluation_row(rec, split, SAMPLE)
    exact, exact_result = evaluation_row(rec, split, None)
    inside = sampled["ci_low"] <= exact["value"] <= sampled["ci_high"]
    coverage = sampler_coverage(exact_result, exact["value"])
    report = {
        "users": USERS,
        "items": ITEMS,
        "events": EVENTS,
        "train_nnz": int(split.train.user_items.nnz),
        "world_s": build_s,
        "als_fit_s": fit_s,
        "kernel": kernel,
        "sampled": sampled,
        "exact": exact,
        "exact_inside_sampled_ci": inside,
        "coverage": coverage,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale_evaluation.json").write_text(json.dumps(report, indent=2))
    lines = render(report)
    (RESULTS / "scale_evaluation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    # unbiased: the mean sampled estimate within 3 standard errors of the exact value; and
    # the interval holds it at about its stated rate (95%; 100 seeds: 88% is 3 sd below)
    assert abs(coverage["mean"] - exact["value"]) < 3 * coverage["sd"] / COVERAGE_SEEDS**0.5
    assert coverage["coverage"] >= 0.88, coverage
    assert kernel[1]["equal_to_previous"] and kernel[2]["equal_to_previous"]


def render(r: dict[str, Any]) -> list[str]:
    fit = r["als_fit_s"]
    lines = [
        f"# Evaluation at scale: {r['users']:,} users x {r['items']:,} items "
        f"({r['events']:,} synthetic events, {r['train_nnz']:,} training pairs)",
        "",
        f"ALS fit (64 factors, 15 iterations, {THREADS} threads): **{fit:.0f} s**. "
        "Evaluation = model top-20 for the evaluated test users, per-user metrics, "
        "bootstrap CIs (1000 replicates), the popularity baseline on the same users and the "
        "paired tests; one process, 2-core shared machine.",
        "",
        "| evaluation | users evaluated | time (s) | x ALS fit | "
        f"{METRIC} | 95% CI | CI width | baseline | Wilcoxon p | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in (("exact (every test user)", r["exact"]), ("sampled", r["sampled"])):
        lines.append(
            f"| {label} | {row['evaluated']:,} of {row['test_users']:,} | {row['seconds']:.0f} | "
            f"{row['seconds'] / fit:.2f} | {row['value']:.4f} | "
            f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}] | {row['ci_width']:.4f} | "
            f"{row['baseline']:.4f} | {row['p_wilcoxon']:.2g} | {row['peak_rss_mb']:.0f} |"
        )
    c = r["coverage"]
    lines += [
        "",
        f"Exact value inside the sampled 95% CI (seed 42): **{r['exact_inside_sampled_ci']}**. "
        f"Over {c['seeds']} sampler seeds (each {SAMPLE:,} users, CI from "
        f"{COVERAGE_REPLICATES} replicates): sampled {METRIC} mean **{c['mean']:.4f}** "
        f"(exact {r['exact']['value']:.4f}), sd {c['sd']:.4f}, range "
        f"[{c['min']:.4f}, {c['max']:.4f}]; the CI holds the exact value for "
        f"**{c['coverage']:.0%}** of the seeds (nominal 95%).",
        "",
        f"Top-10 kernel on {KERNEL_USERS:,} users x {r['items']:,} items (scoring, seen-mask "
        "and selection):",
        "",
        "| path | time (s) | users/s | same ids as the previous path |",
        "|---|---|---|---|",
    ]
    for row in r["kernel"]:
        same = "–" if row["equal_to_previous"] is None else str(row["equal_to_previous"])
        lines.append(
            f"| {row['path']} | {row['seconds']:.2f} | {KERNEL_USERS / row['seconds']:,.0f} "
            f"| {same} |"
        )
    return lines
