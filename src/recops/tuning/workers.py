"""Several worker processes sharing one Optuna study (`recops optimize ... --workers N`).

The coordinator (the `recops optimize` process) creates the study and its MLflow parent run
before any worker starts: workers racing on an empty PostgreSQL schema fail
(`UniqueViolation ... studydirection`). Each worker then joins the study by name (exactly as a
`recops optimize` on another machine does) and runs trials until the study holds the
session's target number; Optuna's storage numbers trials, so there are no gaps or duplicates.
A worker that dies leaves its running trial to the coordinator, which marks it failed (and
its MLflow run FAILED) when it notices; the other workers carry on. Workers on other
machines are covered by the storage heartbeat (`sweep.heartbeat_s`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from recops.console import progress
from recops.tuning.objective import RUN_ID_ATTR, WORKER_ATTR, worker_id

log = logging.getLogger(__name__)
POLL_S = 1.0
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def run_workers(
    study: optuna.Study,
    base: Sequence[str],
    workers: int,
    n_trials: int | None,
    timeout: float | None,
    prepared: Path,
) -> bool:
    """Run the study in `workers` processes until it holds `n_trials` more trials (or
    `timeout` passes), on the split the coordinator prepared in `prepared` (workers never
    ingest: they would fight over the DuckDB store). Returns True if interrupted (Ctrl-C)."""
    # Enqueued trials not yet started (a new study's defaults) are part of this run's budget.
    first = len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))
    target = None if n_trials is None else first + n_trials
    procs = [_spawn(base, target, timeout, index, prepared) for index in range(workers)]
    log.info(
        "study %r: %d workers (pids %s) running %s trials",
        study.study_name, workers, ", ".join(str(p.pid) for p in procs),
        n_trials if n_trials is not None else "unlimited",
    )  # fmt: skip
    interrupted = False
    try:
        _watch(study, procs, first, n_trials)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: stopping the workers (their running trials are failed)")
        for proc in procs:
            _signal(proc, signal.SIGINT)
        for proc in procs:
            _wait(proc)
    _report_exits(procs)
    fail_orphaned_trials(study, [worker_id(p.pid) for p in procs])
    return interrupted


def _spawn(
    base: Sequence[str], target: int | None, timeout: float | None, index: int, prepared: Path
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "recops.tuning.worker", "--index", str(index)]
    cmd += ["--prepared", str(prepared)]
    if target is not None:
        cmd += ["--target", str(target)]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    return subprocess.Popen([*cmd, "--", *base])


def _watch(
    study: optuna.Study, procs: list[subprocess.Popen[bytes]], first: int, n_trials: int | None
) -> None:
    """Show the session's finished trials until every worker has exited."""
    storage, study_id = study._storage, study._study_id
    done = 0
    with progress(f"study {study.study_name} ({len(procs)} workers)", n_trials, "trials") as bar:
        while any(p.poll() is None for p in procs):
            time.sleep(POLL_S)
            trials = storage.get_all_trials(study_id, deepcopy=False, states=FINISHED)
            now = sum(1 for t in trials if t.number >= first)
            if now > done:
                bar.advance(now - done)
                done = now


def _report_exits(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        code = proc.returncode
        if code:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            log.warning("worker pid %d ended with %s; the study went on without it", proc.pid, how)


def fail_orphaned_trials(study: optuna.Study, dead_workers: Sequence[str]) -> list[int]:
    """Mark RUNNING trials of `dead_workers` (ids from `worker_id`) failed, and their MLflow
    runs FAILED (also of those the storage heartbeat already failed). Returns the numbers."""
    storage = study._storage
    dead = set(dead_workers)
    failed = []
    for trial in storage.get_all_trials(
        study._study_id, states=(TrialState.RUNNING, TrialState.FAIL)
    ):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner not in dead:
            continue
        if trial.state == TrialState.RUNNING:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if close_trial_run(trial, f"worker {owner} died during the trial"):
            failed.append(trial.number)
            log.warning("trial %d failed: its worker %s died during it", trial.number, owner)
    return failed


def close_trial_run(trial: optuna.trial.FrozenTrial, reason: str) -> bool:
    """End a failed trial's MLflow run as FAILED if it is still RUNNING (its process died
    before it could). Returns whether it was."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if not run_id:
        return False
    client = MlflowClient()
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.set_tag(run_id, "error", reason)
    client.set_tag(run_id, "state", "fail")
    client.set_terminated(run_id, "FAILED")
    return True


def on_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's `heartbeat_stale_trial_callback`: a trial whose heartbeat stopped (its process died,
    here or on another machine) was just marked failed; end its MLflow run too."""
    owner = trial.user_attrs.get(WORKER_ATTR, "?")
    if close_trial_run(trial, f"worker {owner} stopped sending heartbeats (died)"):
        log.warning("trial %d failed: its worker %s died during it", trial.number, owner)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)


def _wait(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
