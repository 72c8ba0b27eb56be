"""Stage 4: evaluate the trained model next to the popularity baseline; reports + MLflow.

`evaluate_with_config` lives in `recops.evaluation.evaluate` (registry gates and tuning import
it from there); it is re-exported here for older callers.

MLflow, matplotlib and Evidently are imported on a background thread while the stage scores
users (BLAS and the top-k release the GIL): they cost ~5 s of a stage process that would
otherwise be spent in series. Not before the split and the model are loaded: that is GIL-bound
work, which an import beside it slowed by more than it saved (20M events, evaluate stage
36 s with the imports started after loading, 40 s started before, 39 s without them;
means of 2-4 runs)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recops.console import step
from recops.evaluation.evaluate import EvaluationResult, evaluate_with_config
from recops.evaluation.evidently_report import report_for
from recops.evaluation.settings import EvalSection
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.context import StagePaths, read_json, write_json
from recops.preload import preload_in_background
from recops.registry.settings import RegistrySettings

__all__ = ["evaluate_stage", "evaluate_with_config", "finite", "summary_line", "write_plots"]
log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
PLOTS_DIR = "plots"
PLOT_CSV = "metrics_at_k.csv"
PLOT_PNG = "metrics_at_k.png"
EVIDENTLY_HTML = "evidently_recsys.html"
#: What the stage needs after scoring (see the module docstring).
LATER_IMPORTS = ("mlflow", "recops.tracking.store", "recops.evaluation.plots")
EVIDENTLY_IMPORTS = ("evidently", "evidently.metrics")


def evaluate_stage(
    cfg: DictConfig,
    paths: StagePaths,
    split: SplitData | None = None,
    recommender: Recommender | None = None,
) -> EvaluationResult:
    run = read_json(paths.run_file)
    split = split or SplitData.load(paths.features_dir, with_events=False)
    recommender = recommender or Recommender.load(paths.model_dir)
    evidently = EvalSection.from_config(cfg).evidently.enabled
    preload_in_background(*LATER_IMPORTS, *(EVIDENTLY_IMPORTS if evidently else ()))
    # no `step` spinner around it: scoring shows its own progress bars (one live display)
    log.info("evaluating %s and the popularity baseline", recommender.model_type)
    result = evaluate_with_config(recommender, split, cfg)
    report = {"run_id": run["run_id"], **result.to_dict()}
    write_json(paths.reports_dir / METRICS_FILE, finite(report))
    plot_png = write_plots(result, cfg, paths.reports_dir / PLOTS_DIR)
    import mlflow

    from recops.tracking.store import configure_tracking

    configure_tracking(paths.root)
    with mlflow.start_run(run_id=run["run_id"]):
        mlflow.log_metrics({k: v for k, v in result.flat().items() if math.isfinite(v)})
        mlflow.log_artifact(str(plot_png), artifact_path="plots")
        mlflow.log_dict(finite(report), "evaluation/metrics.json")
        log_per_user(result, paths.reports_dir / PLOTS_DIR)
        log_evidently_report(result, split, cfg, paths.reports_dir / PLOTS_DIR)
    log.info("%s", summary_line(result, RegistrySettings.from_config(cfg, paths.root).metric))
    return result


def log_per_user(result: EvaluationResult, folder: Path) -> None:
    """The per-user metric vectors (model and baseline) as an MLflow artifact."""
    import mlflow

    for name, per_user in (("model", result.per_user), ("baseline", result.baseline_per_user)):
        if per_user is not None:
            target = folder / f"per_user_{name}.parquet"
            per_user.to_frame().to_parquet(target, index=False)
            mlflow.log_artifact(str(target), artifact_path="evaluation")
            target.unlink()


def log_evidently_report(
    result: EvaluationResult, split: SplitData, cfg: DictConfig, folder: Path
) -> None:
    """Evidently's recsys report (HTML) as an MLflow artifact; a failure is logged, not fatal
    (the metrics are already recorded)."""
    ev = EvalSection.from_config(cfg)
    if not ev.evidently.enabled:
        return
    import mlflow

    target = folder / EVIDENTLY_HTML
    try:
        with step("Evidently recsys report"):
            written = report_for(
                result,
                split.train.items.external_ids,
                target,
                k=ev.evidently.k,
                max_users=ev.evidently.users,
                seed=ev.seed,
            )
        if written is not None:
            mlflow.log_artifact(str(written), artifact_path="evaluation")
            written.unlink()
    except Exception as exc:  # the report is an extra view: never lose the evaluation for it
        log.warning("Evidently recsys report not written: %s: %s", type(exc).__name__, exc)


def write_plots(result: EvaluationResult, cfg: DictConfig, folder: Path) -> Path:
    """CSV for `dvc plots` (x = k) and a PNG for MLflow, model vs popularity."""
    from recops.evaluation.plots import metrics_at_k_wide, plot_metrics_at_k

    results = {result.model_type: result.metrics, "popularity": result.baseline}
    folder.mkdir(parents=True, exist_ok=True)
    metrics_at_k_wide(results).to_csv(folder / PLOT_CSV, index=False)
    plot_metrics = list(EvalSection.from_config(cfg).plot_metrics)
    return plot_metrics_at_k(results, plot_metrics, folder / PLOT_PNG)


def summary_line(result: EvaluationResult, key: str) -> str:
    """The headline metric `key` (the registry's) with its interval, vs the baseline."""
    model, base = result.metrics.get(key, math.nan), result.baseline.get(key, math.nan)
    low, high = result.intervals.get(key, (math.nan, math.nan))
    line = f"{key}: {result.model_type} {model:.4f} [{low:.4f}, {high:.4f}]"
    line += f" vs popularity {base:.4f}"
    paired = result.vs_baseline.get(key)
    if paired is not None:
        line += f" (paired diff {paired.diff:+.4f}, Wilcoxon p={paired.p_wilcoxon:.3g})"
    sample = result.sample
    if sample.get("sampled"):
        line += f"; {sample['n_evaluated']} of {sample['n_test_users']} test users (sampled)"
    return line


def finite(node: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (DVC and strict JSON readers reject NaN)."""
    if isinstance(node, dict):
        return {k: finite(v) for k, v in node.items()}
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node
