"""After a study: the best config as YAML, Optuna plots, the retrained best on test, and
`summary.json`, under `reports/sweeps/<study>/` and on the study's MLflow parent run."""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import optuna
import yaml
from omegaconf import DictConfig

from recops.config import compose, resolve_path
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.context import write_json
from recops.pipeline.evaluate import evaluate_with_config, finite, summary_line
from recops.pipeline.train import build_model, fit_model
from recops.registry.settings import RegistrySettings
from recops.tuning.space import best_model_config, params_to_overrides

log = logging.getLogger(__name__)
MAX_LEGEND = 12


@dataclass
class StudyOutcome:
    """What a `run_study` call leaves behind (also written as `summary.json`)."""

    study_name: str
    storage: str
    model: str
    metric: str
    parent_run_id: str
    trials: dict[str, int] = field(default_factory=dict)
    best_value: float | None = None
    best_trial: int | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    report_dir: str = ""
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(finite(asdict(self)))

    def headline(self) -> dict[str, Any]:
        """`to_dict` with only the optimised metric of the test results (for the console)."""
        keep = (f"test_{self.metric}", f"test_baseline_{self.metric}")
        test = {k: v for k, v in self.test_metrics.items() if k in keep}
        return {**self.to_dict(), "test_metrics": finite(test)}


def finish(
    study: optuna.Study, cfg: DictConfig, base: list[str], split: SplitData, outcome: StudyOutcome
) -> StudyOutcome:
    """Best config YAML, plots, optional retrain + test, summary; logged to the active
    (parent) run. Fills in and returns `outcome`."""
    folder = resolve_path(cfg.paths.reports_dir) / "sweeps" / study.study_name
    folder.mkdir(parents=True, exist_ok=True)
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    outcome.trials, outcome.report_dir = dict(counts), str(folder)
    mlflow.log_metrics({f"n_trials_{state}": n for state, n in counts.items()})
    if counts["complete"]:
        _report_best(study, cfg, base, split, outcome, folder)
    else:
        log.warning("no trial of study %r has completed: nothing to report", study.study_name)
    for path in write_plots(study, folder):
        mlflow.log_artifact(str(path), artifact_path="plots")
    write_json(folder / "summary.json", outcome.to_dict())
    mlflow.log_artifact(str(folder / "summary.json"))
    return outcome


def _report_best(
    study: optuna.Study,
    cfg: DictConfig,
    base: list[str],
    split: SplitData,
    outcome: StudyOutcome,
    folder: Path,
) -> None:
    best = study.best_trial
    outcome.best_value, outcome.best_trial = best.value, best.number
    outcome.best_params = dict(best.params)
    best_cfg = compose([*base, *params_to_overrides(best.params)])
    path = folder / f"best_{outcome.model}.yaml"
    path.write_text(best_yaml(best_cfg, study.study_name, best, outcome.metric))
    outcome.best_config = str(path)
    mlflow.log_artifact(str(path))
    mlflow.log_dict(outcome.best_params, "best_params.json")
    mlflow.log_metric(f"best_val_{outcome.metric}", float(best.value or math.nan))
    mlflow.set_tag("best_trial", str(best.number))
    log.info(
        "best: trial %d, validation %s=%.4f, %s",
        best.number,
        outcome.metric,
        best.value,
        best.params,
    )
    if cfg.sweep.retrain_best and not outcome.interrupted:
        outcome.test_metrics = retrain_and_test(best_cfg, split)
        mlflow.log_metrics(outcome.test_metrics)


def best_yaml(cfg: DictConfig, study_name: str, best: optuna.trial.FrozenTrial, metric: str) -> str:
    header = (
        f"# Best config of Optuna study {study_name!r}: trial {best.number}, "
        f"validation {metric}={best.value:.5f}.\n"
        "# Copy it to conf/model/<name>.yaml and train it with `recops train model=<name>`.\n"
    )
    return header + yaml.safe_dump(best_model_config(cfg), sort_keys=False)


def retrain_and_test(cfg: DictConfig, split: SplitData) -> dict[str, float]:
    """Fit the best config on the full training data and evaluate it once on the test split."""
    model = build_model(cfg)
    fit_time = fit_model(model, split.train)
    result = evaluate_with_config(Recommender.from_training(model, split.train), split, cfg)
    metric = RegistrySettings.from_config(cfg).metric
    log.info("test (best config, full training data) %s", summary_line(result, metric))
    metrics = {f"test_{k}": v for k, v in result.flat().items() if math.isfinite(v)}
    return {**metrics, "test_fit_time_s": fit_time}


def write_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optuna's optimisation history, learning curves and parameter importances as PNGs."""
    from optuna.visualization import matplotlib as vis

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    plots: dict[str, Callable[[optuna.Study], Any]] = {}
    if complete:
        plots["optimization_history"] = vis.plot_optimization_history
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["intermediate_values"] = vis.plot_intermediate_values
    if len(complete) >= 2:
        plots["param_importances"] = vis.plot_param_importances
    else:
        log.info("parameter importances need >= 2 completed trials: skipped")
    written = []
    for name, plot in plots.items():
        try:
            written.append(_save_plot(plot, study, folder / f"{name}.png"))
        except Exception as exc:  # a plot must never fail the study
            log.info("%s plot skipped: %s", name, exc)
    return written


def _save_plot(plot: Callable[[optuna.Study], Any], study: optuna.Study, path: Path) -> Path:
    import matplotlib.pyplot as plt

    # Optuna's plots switch pyplot to its "ggplot" style: keep that change local.
    with plt.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # tight_layout with a crowded legend
        ax = plot(study)
        legend = ax.get_legend()
        if legend is not None and len(legend.get_texts()) > MAX_LEGEND:
            legend.remove()  # one entry per trial: unreadable beyond a few
        figure = ax.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
    return path


def masked(url: str) -> str:
    """The storage URL without its password (it is logged and written to reports)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: nothing to hide that we know of
        return url
