"""Run (or resume, or join) an Optuna study over one model's search space.

The study lives in an RDB storage (SQLite by default), so running the same command again
adds trials to it, and several processes can work on it at once. Its MLflow parent run id
is kept in the study's user attributes: every session logs its trials as nested runs under
that one parent.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
from hydra.utils import instantiate
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recops.config import (
    compose,
    config_hash,
    find_project_root,
    flatten,
    shared_state_root,
    to_dict,
)
from recops.console import console, setup_logging
from recops.errors import ConfigError
from recops.features.build import validation_split
from recops.features.dataset import SplitData
from recops.models.popularity import PopularityModel
from recops.pipeline.context import StagePaths
from recops.pipeline.prepare import ingest_stage
from recops.pipeline.stages import cached_split
from recops.pipeline.train import data_snapshot, run_tags
from recops.tracking.store import (
    DataSnapshot,
    configure_tracking,
    ensure_experiment,
    log_dataset_input,
)
from recops.tuning.objective import Objective, metric_value, validation_score
from recops.tuning.report import StudyOutcome, finish, masked
from recops.tuning.space import defaults_in_space, parse_space

log = logging.getLogger(__name__)
PARENT_ATTR = "mlflow_parent_run_id"
FINGERPRINT_ATTR = "recops_fingerprint"
_ABSENT = object()
DIRECTIONS = ("maximize", "minimize")


@dataclass
class StudySession:
    """Everything one process needs to run trials of a study (coordinator or worker)."""

    cfg: DictConfig
    model_name: str
    split: SplitData
    study: optuna.Study
    objective: Objective
    baseline_value: float
    outcome: StudyOutcome


def open_session(
    base: list[str], seed_offset: int = 0, prepared: Path | None = None
) -> StudySession:
    """Compose, prepare the data, open (or create) the study and its MLflow parent run."""
    cfg = compose(base)
    model_name = model_choice(base)
    space = search_space(cfg, model_name)
    split, validation = prepare_data(cfg, prepared)
    baseline = validation_score(PopularityModel().fit(validation.train), validation, cfg)
    metric = str(cfg.sweep.metric)
    baseline_value = metric_value(baseline, metric)  # also checks the metric name early
    root = find_project_root()
    configure_tracking(root)
    experiment_id = ensure_experiment(str(cfg.sweep.experiment), root)
    study = open_study(cfg, model_name, fingerprint(cfg, split), seed_offset)
    tags = run_tags(cfg, split.stats, model_name)
    data = data_snapshot(cfg, split.stats, snapshot_folder(cfg))
    parent_id = parent_run(study, cfg, experiment_id, tags, data)
    objective = Objective(
        base_overrides=base,
        space=space,
        validation=validation,
        metric=metric,
        experiment_id=experiment_id,
        parent_run_id=parent_id,
        study_name=study.study_name,
        epoch_steps=int(cfg.sweep.epoch_steps),
        tags=tags,
        data=data,
    )
    outcome = StudyOutcome(
        study.study_name, masked(storage_url(cfg)), model_name, metric, parent_id
    )
    return StudySession(cfg, model_name, split, study, objective, baseline_value, outcome)


def run_study(
    base_overrides: Sequence[str],
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
) -> StudyOutcome:
    """Run `trials` more trials (default `sweep.trials`) for the model of `base_overrides`,
    in this process or (`workers` > 1) in that many worker processes sharing the study."""
    setup_logging()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = list(base_overrides)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    session = open_session(base)
    cfg, study, outcome = session.cfg, session.study, session.outcome
    n_trials = trials if trials is not None else _optional_int(cfg.sweep.trials)
    seconds = timeout if timeout is not None else _optional_float(cfg.sweep.timeout)
    mlflow.start_run(run_id=outcome.parent_run_id)  # reopened by every session that joins
    status = "FAILED"
    try:
        mlflow.log_metric(f"val_baseline_{outcome.metric}", session.baseline_value)
        if workers == 1:
            outcome.interrupted = optimize(study, session.objective, n_trials, seconds)
        else:
            from recops.tuning.workers import run_workers

            prepared = features_folder(cfg)
            outcome.interrupted = run_workers(study, base, workers, n_trials, seconds, prepared)
        finish(study, cfg, base, session.split, outcome)
        status = "KILLED" if outcome.interrupted else "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status)
    return outcome


def model_choice(overrides: Sequence[str]) -> str:
    """The chosen `model` config group option (`als` for `model=als`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(find_project_root() / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    return str(cfg.hydra.runtime.choices.model)


def search_space(cfg: DictConfig, model_name: str) -> dict[str, Any]:
    """`sweep.space`, validated; every key must exist in the composed config."""
    source = f"conf/sweep/{model_name}.yaml"
    space = OmegaConf.select(cfg, "sweep.space")
    if space is None:
        raise ConfigError(
            f"model {model_name!r} has no search space: create {source} with a `space:` "
            "mapping of override paths to distributions (see conf/sweep/als.yaml)"
        )
    for spec in parse_space(space):
        key = spec.key
        if not key.startswith("+") and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"sweep.space.{key} ({source}): {key} is not in the config")
    return to_dict(space)


def features_folder(cfg: DictConfig) -> Path:
    """Where a standalone run (and so a study) keeps its prepared split."""
    return StagePaths.from_config(cfg).standalone(cfg).features_dir


def snapshot_folder(cfg: DictConfig) -> Path:
    """Where a standalone run (and so a study) keeps the data snapshot its split is from."""
    return StagePaths.from_config(cfg).standalone(cfg).snapshot_dir


def prepare_data(cfg: DictConfig, prepared: Path | None = None) -> tuple[SplitData, SplitData]:
    """The prepared split (cached like a standalone run; or the one in `prepared`, built by
    the coordinator of a multi-worker study) and the validation split carved from its
    training part."""
    if prepared is not None:
        split = SplitData.load(prepared)
    else:
        paths = StagePaths.from_config(cfg).standalone(cfg)
        split = cached_split(cfg, paths, ingest_stage(cfg, paths))
    validation = validation_split(split, instantiate(cfg.sweep.validation))
    if validation.test.empty:
        raise ConfigError("the validation holdout is empty: check sweep.validation")
    log.info(
        "validation: %d fit events, %d holdout pairs (from the training data only)",
        validation.stats["n_train_events"],
        validation.stats["n_test_pairs"],
    )
    return split, validation


def fingerprint(cfg: DictConfig, split: SplitData) -> str:
    """What makes trial values comparable: data, features, split, validation, metric."""
    sweep = cfg.sweep
    return config_hash(
        cfg.data,
        cfg.features,
        cfg.split,
        cfg.eval,
        sweep.validation,
        sweep.metric,
        sweep.direction,
        cfg.model._target_,
        split.stats.get("snapshot_hash"),
    )


def storage_url(cfg: DictConfig) -> str:
    return str(cfg.sweep.storage or f"sqlite:///{shared_state_root() / 'optuna.db'}")


def open_storage(cfg: DictConfig) -> optuna.storages.BaseStorage:
    """The study's storage; RDB storages get a heartbeat, so a trial whose process died is
    marked failed (by the next trial started anywhere) instead of staying RUNNING forever."""
    url = storage_url(cfg)
    heartbeat = OmegaConf.select(cfg, "sweep.heartbeat_s")
    if heartbeat is None or "://" not in url:
        return optuna.storages.get_storage(url)
    with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from recops.tuning.workers import on_stale_trial

        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=int(heartbeat),
            grace_period=int(OmegaConf.select(cfg, "sweep.grace_s") or 2 * int(heartbeat)),
            heartbeat_stale_trial_callback=on_stale_trial,
        )


def open_study(
    cfg: DictConfig, model_name: str, identity: str, seed_offset: int = 0
) -> optuna.Study:
    """Create the study, or load it if it exists (refusing one run on other data).

    `seed_offset` tells workers joining at the same moment apart (else they would sample
    the same parameters)."""
    sweep = cfg.sweep
    direction = str(sweep.direction)
    if direction not in DIRECTIONS:
        raise ConfigError(f"sweep.direction must be maximize or minimize, got {direction!r}")
    name = str(sweep.study_name or f"{cfg.data.name}-{model_name}")
    storage = open_storage(cfg)
    try:
        done = storage.get_n_trials(storage.get_study_id_from_name(name))
    except KeyError:
        done = 0
    # Offset the seed, or a resumed study would replay its first random trials.
    sampler = optuna.samplers.TPESampler(seed=int(sweep.seed) + done + 7919 * seed_offset)
    pruner = optuna.pruners.MedianPruner(**to_dict(sweep.pruner))
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize" if direction == "maximize" else "minimize",
        load_if_exists=True,
        sampler=sampler,
        pruner=pruner,
    )
    if done == 0 and seed_offset == 0 and bool(sweep.start_from_defaults):
        start = defaults_in_space(cfg, parse_space(sweep.space))
        study.enqueue_trial(start, skip_if_exists=True)
        log.info("trial 0 evaluates the configured defaults: %s", start)
    known = study.user_attrs.get(FINGERPRINT_ATTR)
    if known is not None and known != identity:
        raise ConfigError(
            f"study {name!r} holds trials on other data/split/metric settings; pass "
            "sweep.study_name=<new name> to start a new study"
        )
    study.set_user_attr(FINGERPRINT_ATTR, identity)
    log.info(
        "%s study %r (%d trials so far) in %s",
        "resuming" if done else "created",
        name,
        done,
        masked(storage_url(cfg)),
    )
    return study


def parent_run(
    study: optuna.Study,
    cfg: DictConfig,
    experiment_id: str,
    tags: dict[str, str],
    data: DataSnapshot,
) -> str:
    """The study's MLflow parent run: the one recorded in the study, else a new one (with
    `data` as its dataset input)."""
    client = MlflowClient()
    known = study.user_attrs.get(PARENT_ATTR)
    if known:
        try:
            if client.get_run(known).info.lifecycle_stage == "active":
                log.info("trials are logged under MLflow parent run %s", known)
                return str(known)
        except MlflowException:
            pass
        log.warning("the study's parent run %s is gone from this MLflow store; new one", known)
    run = client.create_run(
        experiment_id,
        run_name=study.study_name,
        tags={
            **tags,
            "optuna.study_name": study.study_name,
            "optuna.storage": masked(storage_url(cfg)),
        },
    )
    # Searched keys vary per trial and session settings per call: neither belongs here
    # (MLflow params are immutable, a resumed study would conflict).
    skip = {"sweep.trials", "sweep.timeout", *(spec.key for spec in parse_space(cfg.sweep.space))}
    params = {k: v for k, v in flatten(cfg).items() if k not in skip}
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    log_dataset_input(data, run_id=run.info.run_id)
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    log.info("created MLflow parent run %s for study %r", run.info.run_id, study.study_name)
    return str(run.info.run_id)


def optimize(
    study: optuna.Study, objective: Objective, n_trials: int | None, timeout: float | None
) -> bool:
    """`study.optimize` behind a progress bar; failed trials don't stop the study.

    Returns True if interrupted (Ctrl-C): the study so far is still reported.
    """
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[best]}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"study {study.study_name}", total=n_trials, best="")

        def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            progress.update(task, advance=1, best=_best_text(study, objective.metric))
            log_trial(trial, objective.metric)

        try:
            study.optimize(
                objective,
                n_trials=n_trials,
                timeout=timeout,
                catch=(Exception,),
                callbacks=[on_trial],
            )
        except KeyboardInterrupt:
            log.warning("interrupted: reporting the study so far (no retraining)")
            return True
    return False


def _best_text(study: optuna.Study, metric: str) -> str:
    try:
        return f"best {metric}={study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:  # no completed trial yet
        return ""


def log_trial(trial: optuna.trial.FrozenTrial, metric: str) -> None:
    seconds = trial.duration.total_seconds() if trial.duration else math.nan
    log.info(
        "trial %d %s in %.1f s: %s %s",
        trial.number,
        trial.state.name.lower(),
        seconds,
        _value_text(trial, metric),
        trial.params,
    )


def _value_text(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    if trial.value is not None:
        return f"{metric}={trial.value:.4f}"
    if trial.last_step is not None:
        value = trial.intermediate_values[trial.last_step]
        return f"{metric}={value:.4f} at epoch {trial.last_step}"
    return "no value"


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
