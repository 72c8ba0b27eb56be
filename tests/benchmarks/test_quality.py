"""Quality of every configured model on MovieLens ml-latest-small, default split.

Writes reports/benchmarks/quality.md (and .json). Untuned models use their conf/model
defaults; tuned rows refit the best parameters of the MovieLens sweeps (the validation carve
of the training data chose them; each is evaluated once here, on test). Those parameters are
recorded in the committed reports/benchmarks/quality_params.json (and listed in quality.md):
a sweep found under reports/sweeps/ (git-ignored) replaces its model's entry there, and
without any sweep the benchmark refits what the file records, so the table can be re-run.
Every metric with a per-user value carries its 95% bootstrap interval over users, and each
challenger of `PAIRED` is compared with its reference's tuned row on the same users.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recops.config import compose
from recops.evaluation.evaluate import EvaluationResult, compare_on_users
from recops.evaluation.settings import EvalSettings
from recops.evaluation.significance import PairedComparison
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.evaluate import evaluate_with_config
from recops.pipeline.train import build_model
from recops.tuning.space import params_to_overrides

from .conftest import ML_SMALL, PROJECT_ROOT, RESULTS, build_features

MODELS = sorted(p.stem for p in (PROJECT_ROOT / "conf" / "model").glob("*.yaml"))
COLUMNS = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage_at_10")
#: (challenger, reference): every challenger row, tuned or not, is compared by a paired test
#: with the reference's tuned row (its untuned row if no sweep of it exists).
PAIRED = (("slist", "ease"),)
BASE = ["data=movielens_small"]
#: The committed record of the tuned rows' parameters (see `tuned_configs`).
PARAMS = RESULTS / "quality_params.json"


@dataclass
class Row:
    model: str
    tuned: bool
    result: EvaluationResult
    fit_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tuned": self.tuned,
            **{c: self.result.metrics.get(c) for c in COLUMNS},
            "ci95": {
                c: list(self.result.intervals[c]) for c in COLUMNS if c in self.result.intervals
            },
            "fit_time_s": self.fit_time_s,
        }


def measure(
    model_name: str, split: SplitData, overrides: list[str], tuned: bool, base: list[str] = BASE
) -> Row:
    cfg = compose([*base, f"model={model_name}", *overrides])
    model = build_model(cfg)
    start = time.perf_counter()
    model.fit(split.train)
    fit_time = time.perf_counter() - start
    result = evaluate_with_config(
        Recommender.from_training(model, split.train), split, cfg, with_baseline=False
    )
    return Row(model_name, tuned, result, fit_time)


def sweep_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Model -> the record of its finished MovieLens sweep under `folder` (each
    `<study>/summary.json`): study, trials, validation metric and value, best parameters."""
    found: dict[str, dict[str, Any]] = {}
    for summary in sorted(folder.glob("*/summary.json")):
        data = json.loads(summary.read_text())
        if "movielens" not in str(data.get("study_name", "")) or not data.get("best_params"):
            continue
        found[str(data["model"])] = {
            "study_name": data["study_name"],
            "trials": int(data.get("trials", {}).get("complete", 0)),
            "metric": data.get("metric"),
            "validation_value": data.get("best_value"),
            "best_params": data["best_params"],
        }
    return found


def tuned_records(
    sweeps: Path = PROJECT_ROOT / "reports" / "sweeps", recorded: Path = PARAMS
) -> dict[str, Any]:
    """The committed record (`recorded`) with every sweep found under `sweeps` replacing its
    model's entry (and its model's line among the unrecorded rows, if any)."""
    record: dict[str, Any] = {"tuned": {}, "unrecorded": {}}
    if recorded.is_file():
        record.update(json.loads(recorded.read_text()))
    for model, entry in sweep_records(sweeps).items():
        record["tuned"][model] = entry
        record["unrecorded"].pop(model, None)
    return record


def tuned_label(model: str, entry: dict[str, Any]) -> str:
    return f"{model} (tuned, {entry['trials']} trials)"


def tuned_configs(record: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Label -> (model, best-parameter overrides) of every recorded sweep."""
    return {
        tuned_label(model, entry): (model, params_to_overrides(entry["best_params"]))
        for model, entry in sorted(record["tuned"].items())
    }


def render_params(record: dict[str, Any]) -> str:
    """The recorded best parameters of each tuned row, and the tuned rows of earlier reports
    whose parameters were never recorded (not re-tuned, so not in the table)."""
    lines = [
        "| tuned row | study | validation value | best parameters |",
        "|---|---|---|---|",
    ]
    for model, entry in sorted(record["tuned"].items()):
        params = ", ".join(
            f"`{k}={v:.6g}`" if isinstance(v, float) else f"`{k}={v}`"
            for k, v in entry["best_params"].items()
        )
        value = entry.get("validation_value")
        shown = f"{entry.get('metric')} {value:.4f}" if value is not None else "–"
        lines.append(
            f"| {tuned_label(model, entry)} | {entry['study_name']} | {shown} | {params} |"
        )
    text = "\n".join(lines)
    if record["unrecorded"]:
        text += (
            "\n\nTuned rows of earlier reports whose parameters were not recorded (their sweep "
            "folders were git-ignored and are gone) and that were not re-tuned: they are not "
            "reproducible and are not in the table above.\n\n"
            "| earlier row | NDCG@10 then | reported in |\n|---|---|---|\n"
            + "\n".join(
                f"| {u['label']} | {u['ndcg_at_10']:.4f} | {u['reported_in']} |"
                for _, u in sorted(record["unrecorded"].items())
            )
        )
    return text


def paired_tests(rows: dict[str, Row], settings: EvalSettings) -> dict[str, PairedComparison]:
    """`PAIRED` challengers vs their reference, on the warm users both were evaluated on."""
    out: dict[str, PairedComparison] = {}
    for challenger, reference in PAIRED:
        refs = [k for k, r in rows.items() if r.model == reference]
        ref_label = next((k for k in refs if rows[k].tuned), refs[0] if refs else None)
        if ref_label is None:
            continue
        for label, row in rows.items():
            if row.model == challenger:
                out.update(paired(label, row, ref_label, rows[ref_label], settings))
    return out


def paired(
    label: str, a: Row, ref_label: str, b: Row, settings: EvalSettings
) -> dict[str, PairedComparison]:
    """`a` vs `b` on `settings.compare_metrics` over the warm users of `a`'s evaluation."""
    ra, rb = a.result, b.result
    assert ra.per_user is not None and rb.per_user is not None and ra.test is not None
    warm = ra.test.sample.segment_mask("warm")
    return {
        f"{label} vs {ref_label}: {metric}": cmp
        for metric, cmp in compare_on_users(ra.per_user, rb.per_user, settings, warm).items()
    }


def cell(row: Row, column: str) -> str:
    value = row.result.metrics.get(column)
    if value is None:
        return "–"
    interval = row.result.intervals.get(column)
    return f"{value:.4f}" + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")


def render_table(rows: dict[str, Row]) -> str:
    head = (
        "| model | NDCG@10 [95% CI] | Recall@10 [95% CI] | MAP@10 [95% CI] | coverage@10 "
        "| fit (s) |"
    )
    lines = [head, "|---|---|---|---|---|---|"]
    ranked = sorted(rows.items(), key=lambda kv: -(kv[1].result.metrics.get("ndcg_at_10") or 0))
    for label, row in ranked:
        cells = " | ".join(cell(row, c) for c in COLUMNS)
        lines.append(f"| {label} | {cells} | {row.fit_time_s:.2f} |")
    return "\n".join(lines)


def render_paired(tests: dict[str, PairedComparison]) -> str:
    lines = [
        "| comparison (A vs B) | mean A | mean B | diff A−B [95% CI] | p Wilcoxon | p bootstrap "
        "| Cohen's d_z | rank-biserial | users |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in tests.items():
        lines.append(
            f"| {name} | {c.mean_a:.4f} | {c.mean_b:.4f} | {c.diff:+.4f} "
            f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.p_wilcoxon:.2g} | {c.p_bootstrap:.2g} "
            f"| {c.effect_size:+.3f} | {c.rank_biserial:+.3f} | {c.n_users} |"
        )
    return "\n".join(lines)


@pytest.mark.skipif(not ML_SMALL.is_dir(), reason=f"MovieLens not found at {ML_SMALL}")
def test_quality_table(tmp_path: Path) -> None:
    split = build_features(tmp_path, [*BASE, f"data.source.local_dir={ML_SMALL}"])
    rows = {name: measure(name, split, [], tuned=False) for name in MODELS}
    record = tuned_records()
    for label, (model, overrides) in tuned_configs(record).items():
        rows[label] = measure(model, split, overrides, tuned=True)
    tests = paired_tests(rows, EvalSettings.from_config(compose(BASE)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = (
        "# Quality on MovieLens ml-latest-small\n\nPer-user temporal 80/20 split (last 20% "
        "of each user's ratings), ratings as implicit positives, seen items excluded, "
        "warm users. 2 cores. Tuned rows: the best parameters of an Optuna sweep on a "
        "validation carve of the training data (`recops optimize model=<name>`), refitted "
        "on the training data and evaluated once here; their parameters are listed below "
        "and recorded in `quality_params.json`. Intervals: 95% bootstrap over users "
        "(seeded).\n\n"
    )
    params = (
        "\n\n## Best parameters of the tuned rows\n\nFrom `reports/benchmarks/"
        "quality_params.json` (committed; a sweep's `summary.json` under reports/sweeps/ "
        "replaces its model's entry when present). The validation value is the sweep's best "
        "on the validation carve, not on test.\n\n" + render_params(record)
    )
    paired = (
        "\n\n## Paired tests on the same users\n\nPer-user differences (warm users): paired "
        "bootstrap interval and p-value, Wilcoxon signed-rank (Pratt), effect sizes "
        "(`recops.evaluation.significance`).\n\n" + render_paired(tests)
    )
    (RESULTS / "quality.md").write_text(header + render_table(rows) + paired + params + "\n")
    PARAMS.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    report = {
        "rows": {k: r.to_dict() for k, r in rows.items()},
        "paired": {k: c.to_dict() for k, c in tests.items()},
    }
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=2))
    print("\n" + render_table(rows) + "\n\n" + render_paired(tests))
    ndcg = {k: r.result.metrics["ndcg_at_10"] for k, r in rows.items()}
    assert ndcg["popularity"] < max(ndcg.values())
    assert all(r.result.intervals["ndcg_at_10"][0] <= ndcg[k] for k, r in rows.items())
    assert any(name.startswith("slist") for name in tests), "no paired test of the new model"


#: The default synthetic world (conf/data/synthetic.yaml) and the rows compared there.
SYNTHETIC: dict[str, tuple[str, list[str]]] = {
    "ease": ("ease", []),
    "ease (recency_half_life=5)": ("ease", ["model.recency_half_life=5"]),
    "slist": ("slist", []),
}


def test_synthetic_world_slist_vs_ease(tmp_path: Path) -> None:
    """SLIST (defaults) must be no worse than EASE on the default synthetic world: the upper
    end of the paired 95% interval of the NDCG@10 difference is not below 0."""
    base = ["data=synthetic"]
    split = build_features(tmp_path, base)
    rows = {
        label: measure(model, split, overrides, tuned=False, base=base)
        for label, (model, overrides) in SYNTHETIC.items()
    }
    settings = EvalSettings.from_config(compose(base))
    tests: dict[str, PairedComparison] = {}
    for label in ("ease", "ease (recency_half_life=5)"):
        tests.update(paired("slist", rows["slist"], label, rows[label], settings))
    header = (
        "# SLIST vs EASE on the default synthetic world\n\n`conf/data/synthetic.yaml` "
        "defaults (5k users, 2k items, ~200k events with sessions and complements), default "
        "split, conf/model defaults, no tuning. 95% bootstrap intervals over users.\n\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = header + render_table(rows) + "\n\n" + render_paired(tests) + "\n"
    (RESULTS / "quality_synthetic.md").write_text(text)
    print("\n" + text)
    for name, cmp in tests.items():
        if name.endswith("ndcg_at_10"):
            assert cmp.ci_high >= 0, f"SLIST is worse than EASE on the synthetic world: {name}"


def test_tuned_records_replay_the_committed_parameters(tmp_path: Path) -> None:
    """Without a sweep folder the recorded parameters are refitted; a sweep's summary replaces
    its model's entry and clears its line among the unrecorded rows."""
    recorded = tmp_path / "quality_params.json"
    entry = {
        "study_name": "movielens_small-ease",
        "trials": 3,
        "metric": "ndcg_at_10",
        "validation_value": 0.14,
        "best_params": {"model.regularization": 250.5, "model.recency_half_life": 5.0},
    }
    unrecorded = {"label": "bpr (tuned, 7 trials)", "ndcg_at_10": 0.1, "reported_in": "abc"}
    recorded.write_text(json.dumps({"tuned": {"ease": entry}, "unrecorded": {"bpr": unrecorded}}))
    record = tuned_records(tmp_path / "no-sweeps", recorded)
    assert tuned_configs(record) == {
        "ease (tuned, 3 trials)": (
            "ease",
            ["model.regularization=250.5", "model.recency_half_life=5.0"],
        )
    }
    assert "model.regularization=250.5" in render_params(record)
    assert "bpr (tuned, 7 trials)" in render_params(record)
    study = tmp_path / "sweeps" / "movielens_small-bpr"
    study.mkdir(parents=True)
    summary = {
        "study_name": "movielens_small-bpr",
        "model": "bpr",
        "metric": "ndcg_at_10",
        "trials": {"complete": 4},
        "best_value": 0.11,
        "best_params": {"model.factors": 64},
    }
    (study / "summary.json").write_text(json.dumps(summary))
    record = tuned_records(tmp_path / "sweeps", recorded)
    assert set(tuned_configs(record)) == {"ease (tuned, 3 trials)", "bpr (tuned, 4 trials)"}
    assert record["unrecorded"] == {}
