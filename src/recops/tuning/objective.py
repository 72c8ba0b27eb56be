"""The objective of one Optuna trial: compose, fit on the validation split, score, log.

Every trial is a nested MLflow run under the study's parent run. Iterative models
(`RecModel.epochs_param`) are trained in chunks and scored after each one, so Optuna's
pruner can stop hopeless trials early.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
import optuna
from omegaconf import DictConfig

from recops.config import compose, flatten
from recops.errors import ConfigError
from recops.evaluation.evaluate import EvaluationResult
from recops.features.dataset import SplitData
from recops.models.base import RecModel
from recops.models.recommender import Recommender
from recops.pipeline.evaluate import evaluate_with_config
from recops.pipeline.train import build_model
from recops.tracking.runs import owner_tags
from recops.tracking.store import DataSnapshot, log_dataset_input
from recops.tuning.space import epochs_upper_bound, parse_space, suggest_overrides

log = logging.getLogger(__name__)
#: Optuna trial user attribute holding the trial's MLflow run id.
RUN_ID_ATTR = "mlflow_run_id"
#: Optuna trial user attribute naming the process running the trial (`host:pid`).
WORKER_ATTR = "worker"


def worker_id(pid: int | None = None) -> str:
    """`host:pid` of a process running trials (this one by default)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def metric_value(result: EvaluationResult, metric: str) -> float:
    """`metric` from `result.flat()` (e.g. `ndcg_at_10`, `light_recall_at_20`)."""
    flat = result.flat()
    if metric not in flat:
        raise ConfigError(
            f"sweep.metric {metric!r} is not an evaluation metric; choose one of "
            f"{', '.join(sorted(flat))}"
        )
    return float(flat[metric])


def validation_score(model: RecModel, validation: SplitData, cfg: DictConfig) -> EvaluationResult:
    """Evaluate `model` (fitted on `validation.train`) on the validation holdout."""
    recommender = Recommender.from_training(model, validation.train)
    return evaluate_with_config(recommender, validation, cfg, with_baseline=False)


def epoch_chunks(total: int, stride: int) -> list[int]:
    """`total` epochs as chunks of `stride` (the last one shorter), e.g. 17, 8 -> [8, 8, 1]."""
    if total <= 0:
        return []
    stride = max(1, stride)
    return [stride] * (total // stride) + ([total % stride] if total % stride else [])


def quiet(model: RecModel) -> None:
    """Switch off a model's own progress bar (it would fight the study's progress display).

    Only the instance changes: the trial's config, and so the logged params, are untouched.
    """
    if hasattr(model, "show_progress"):
        model.show_progress = False


@dataclass
class Objective:
    """Callable objective: one instance per study, shared by all its trials.

    `validation` is carved from the training data once per study; `space` is the study's
    `sweep.space`. `tags` go on every trial run (dataset, snapshot, commit, ...), and `data`
    (the snapshot the validation split is carved from) as its dataset input.
    """

    base_overrides: Sequence[str]
    space: Mapping[str, Any]
    validation: SplitData
    metric: str
    experiment_id: str
    parent_run_id: str
    study_name: str
    epoch_steps: int = 5
    tags: Mapping[str, str] = field(default_factory=dict)
    data: DataSnapshot | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_id())
        overrides = suggest_overrides(trial, self.space)
        run = mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=f"{self.study_name}-trial-{trial.number}",
            nested=True,
            parent_run_id=self.parent_run_id,
            tags={
                **self.tags,
                "trial_number": str(trial.number),
                "optuna.study_name": self.study_name,
                **owner_tags(),  # a killed worker's trial run is marked FAILED by recovery
            },
        )
        trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
        status, state = "FAILED", "fail"
        try:
            value = self._run(trial, overrides)
            status, state = "FINISHED", "complete"
            return value
        except optuna.TrialPruned:
            status, state = "FINISHED", "pruned"
            raise
        except KeyboardInterrupt:
            status, state = "KILLED", "fail"
            raise
        except Exception as exc:
            # Optuna logs the traceback; the run keeps the reason.
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:4000])
            raise
        finally:
            mlflow.set_tag("state", state)
            mlflow.end_run(status)

    def _run(self, trial: optuna.Trial, overrides: list[str]) -> float:
        start = time.perf_counter()
        if self.data is not None:
            log_dataset_input(self.data)
        cfg = compose([*self.base_overrides, *overrides])
        mlflow.log_params({**flatten(cfg.model, "model"), **trial.params})
        model = build_model(cfg)
        quiet(model)
        if model.epochs_param is None:
            model.fit(self.validation.train)
            result, step = validation_score(model, self.validation, cfg), 0
        else:
            result, step = self._fit_in_chunks(trial, model, cfg)
        value = metric_value(result, self.metric)
        if not math.isfinite(value):
            raise ValueError(f"validation {self.metric} is {value}")
        finite = {f"val_{k}": v for k, v in result.flat().items() if math.isfinite(v)}
        mlflow.log_metrics(finite, step=step)
        mlflow.log_metric("trial_time_s", time.perf_counter() - start)
        return value

    def _fit_in_chunks(
        self, trial: optuna.Trial, model: RecModel, cfg: DictConfig
    ) -> tuple[EvaluationResult, int]:
        """Fit chunk by chunk, reporting the metric after each; raises `TrialPruned`.

        Returns the last evaluation and the number of epochs trained.
        """
        assert model.epochs_param is not None
        total = int(model.get_params()[model.epochs_param])
        if total < 1:
            raise ConfigError(f"model.{model.epochs_param} must be >= 1, got {total}")
        done = 0
        for chunk in epoch_chunks(total, self._stride(model.epochs_param, total)):
            model.fit_partial(self.validation.train, chunk)
            done += chunk
            result = validation_score(model, self.validation, cfg)
            value = metric_value(result, self.metric)
            trial.report(value, step=done)
            if trial.should_prune():
                mlflow.log_metric(f"val_{self.metric}", value, step=done)
                log.info(
                    "trial %d pruned after %d/%d epochs (%s=%.4f)",
                    trial.number,
                    done,
                    total,
                    self.metric,
                    value,
                )
                raise optuna.TrialPruned(f"pruned after {done} epochs: {self.metric}={value}")
            if done < total:
                mlflow.log_metric(f"val_{self.metric}", value, step=done)
        return result, done

    def _stride(self, epochs_param: str, total: int) -> int:
        """Epochs per chunk, fixed for the whole study so trials report at the same steps.

        The median pruner only compares values reported at the same step; a stride derived
        from the widest epoch range of the space puts every trial on one grid.
        """
        widest = epochs_upper_bound(parse_space(self.space), f"model.{epochs_param}")
        return max(1, math.ceil(max(widest or total, total) / max(1, self.epoch_steps)))
