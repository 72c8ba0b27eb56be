"""One worker cycle: ingest new files -> drift check -> retrain when due -> gated promotion.

Outcomes (the MLflow cycle run's `outcome` tag): `no_new_data`, `ingested_no_drift`,
`retrained_promoted`, `retrained_not_promoted`, `failed`. The drift check compares what
arrived since the last training (batches after `trained_through_batch`) with what that model
was trained on. See `recops.worker.state` for how a failed or crashed cycle is resumed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import validate_config
from recops.data.store import EventStore
from recops.errors import ConfigError
from recops.faults import pause_point
from recops.gdpr import retrain as gdpr_retrain
from recops.monitoring.check import Champion, run_check
from recops.monitoring.frames import EventWindow, batch_window, last_batch
from recops.monitoring.settings import DriftSettings
from recops.monitoring.stage import check_context, file_mapping, load_champion
from recops.paths import StagePaths, dataset_key
from recops.registry.lifecycle import Registry
from recops.registry.settings import RegistrySettings
from recops.tracking.store import configure_tracking
from recops.worker import incoming
from recops.worker.settings import WorkerSettings, format_duration
from recops.worker.state import WorkerState, iso, utc_now
from recops.worker.tracking import close_cycle_run, fail_stale_run, open_cycle_run
from recops.worker.training import can_fold_in, prepare_split, register, train_fold_in, train_full

log = logging.getLogger(__name__)
CRASHED = "the worker stopped mid-cycle (crash or kill); the next cycle redid its work"


@dataclass
class CycleRecord:
    """What one cycle did; stored in state.json and as the cycle run's tags and metrics."""

    cycle: int
    started_at: str
    pid: int
    outcome: str = "running"
    finished_at: str | None = None
    seconds: float = 0.0
    mlflow_run_id: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    n_files: int = 0
    n_ingested_files: int = 0
    n_inserted: int = 0
    n_quarantined: int = 0
    action: str | None = None
    max_psi: float | None = None
    drift_run_id: str | None = None
    retrain_reason: str | None = None
    training_mode: str | None = None
    training_run_id: str | None = None
    model_version: str | None = None
    promoted_to: str | None = None
    promotion_reason: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Worker:
    """Runs cycles for the dataset of `cfg.data`; safe to re-create between cycles (all
    state is in the store, the registry and `worker.work_dir/state.json`)."""

    def __init__(self, cfg: DictConfig) -> None:
        validate_config(cfg)
        self.cfg = cfg
        self.paths = StagePaths.from_config(cfg)
        self.settings = WorkerSettings.from_config(cfg, self.paths.root)
        self.registry = RegistrySettings.from_config(cfg, self.paths.root)
        self.drift = DriftSettings.from_config(cfg)
        self.work_paths = self.settings.stage_paths(self.paths)
        self.dataset = dataset_key(cfg.data)
        self.mapping = file_mapping(cfg)

    def run_cycle(self) -> CycleRecord:
        """One cycle; exceptions become outcome `failed` (the next cycle starts over)."""
        state = self.load_state()
        record = CycleRecord(state.cycles + 1, str(iso(utc_now())), os.getpid())
        started = time.perf_counter()
        state.cycles, state.running = record.cycle, record.to_dict()
        state.save(self.settings.state_file)
        try:
            record.mlflow_run_id = open_cycle_run(
                self.settings.experiment, record.cycle, self.dataset, self.paths.root
            )
            state.running = record.to_dict()
            state.save(self.settings.state_file)
            self._cycle(state, record)
        except Exception as exc:
            record.outcome, record.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("cycle %d failed", record.cycle)
        record.finished_at, record.seconds = iso(utc_now()), time.perf_counter() - started
        if record.mlflow_run_id is not None:
            try:
                close_cycle_run(record.mlflow_run_id, record.to_dict())
            except MlflowException as exc:
                log.warning("could not close the cycle's MLflow run: %s", exc)
        state.finish(record.to_dict())
        state.save(self.settings.state_file)
        return record

    def load_state(self) -> WorkerState:
        """The saved state; a cycle left `running` by a dead process is closed as failed."""
        state = WorkerState.load(self.settings.state_file)
        if state.dataset not in (None, self.dataset):
            raise ConfigError(
                f"{self.settings.state_file} belongs to dataset {state.dataset!r}, not "
                f"{self.dataset!r}: use another worker.work_dir for this dataset"
            )
        state.dataset = self.dataset
        if state.running is not None:
            crashed = {**state.running, "outcome": "failed", "error": CRASHED}
            if crashed.get("mlflow_run_id"):
                configure_tracking(self.paths.root)
                fail_stale_run(str(crashed["mlflow_run_id"]), CRASHED)
            log.warning("cycle %s did not finish: %s", crashed.get("cycle"), CRASHED)
            state.finish(crashed)
            state.save(self.settings.state_file)
        self.recover()
        return state

    def recover(self) -> None:
        """Finish what a dead process left: stale RUNNING runs, half-done registrations."""
        configure_tracking(self.paths.root)
        Registry(self.cfg, MlflowClient(), self.paths.root).reconcile()

    # ------------------------------------------------------------------ the steps

    def _cycle(self, state: WorkerState, record: CycleRecord) -> None:
        erasure = gdpr_retrain.pending(self.settings.erasure_request)
        with EventStore(self.paths.duckdb) as store:
            if state.trained_through_batch is None:
                self._bootstrap(state, last_batch(store.con, self.dataset))
                # saved before ingesting: a crash after the ingest must not count the new
                # batch as already trained on when the next cycle bootstraps again
                state.save(self.settings.state_file)
            self._ingest(store, record)
            pause_point("worker-ingested")
            latest = last_batch(store.con, self.dataset)
            trained = int(state.trained_through_batch or 0)
            due = self._schedule_due(state, latest)
            if erasure is None and latest <= int(state.checked_through_batch or 0) and not due:
                record.outcome = "no_new_data"
                return
            reference = self._side(store, 0, trained, "training data") if trained else None
            current = self._side(store, trained, latest, "arrived since")
        if erasure is not None:  # a GDPR erasure left versions that must be retrained
            record.retrain_reason = erasure.reason
            self._retrain("full", load_champion(self.cfg, self.paths.root), record)
            gdpr_retrain.done(self.settings.erasure_request, erasure)
            state.trained_through_batch = state.checked_through_batch = latest
            state.last_trained_at = iso(utc_now())
            return
        if current.events.empty:  # only rows the store already had arrived
            state.checked_through_batch, record.outcome = latest, "no_new_data"
            return
        champion = load_champion(self.cfg, self.paths.root)
        has_reference = reference is not None and not reference.events.empty
        if has_reference and latest > int(state.checked_through_batch or 0):
            assert reference is not None
            self._check_drift(reference, current, champion, record)
        mode = self._decide(state, champion, record, due, has_reference)
        if mode is None:
            state.checked_through_batch, record.outcome = latest, "ingested_no_drift"
            return
        self._retrain(mode, champion, record)
        state.trained_through_batch = state.checked_through_batch = latest
        state.last_trained_at = iso(utc_now())

    def _bootstrap(self, state: WorkerState, latest: int) -> None:
        """First cycle: with a champion, what the store already holds counts as its training
        data (and its registration time as the last training); without one, nothing does."""
        created = self._champion_created()
        state.trained_through_batch = state.checked_through_batch = latest if created else 0
        state.last_trained_at = iso(created)
        log.info(
            "worker state initialised: trained through batch %d (%s)",
            state.trained_through_batch, "champion found" if created else "no champion yet",
        )  # fmt: skip

    def _champion_created(self) -> datetime | None:
        configure_tracking(self.paths.root)
        reg = self.registry
        try:
            version = MlflowClient().get_model_version_by_alias(reg.model_name, reg.champion_alias)
        except MlflowException:
            return None
        return datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC)

    def _ingest(self, store: EventStore, record: CycleRecord) -> None:
        seen = incoming.ingested_hashes(store, self.dataset)
        s = self.settings
        for path in incoming.waiting_files(s.incoming_dir):
            result = incoming.ingest_file(store, self.dataset, path, self.mapping, seen)
            incoming.move_done(path, result, s.processed_dir, s.rejected_dir)
            record.files.append(result.to_dict())
        record.n_files = len(record.files)
        ingested = [f for f in record.files if f["status"] == "ingested"]
        record.n_ingested_files = len(ingested)
        record.n_inserted = sum(int(f["n_inserted"]) for f in ingested)
        record.n_quarantined = sum(int(f["n_quarantined"]) for f in ingested)

    def _side(self, store: EventStore, after: int, upto: int, what: str) -> EventWindow:
        label = f"batches {after + 1}..{upto} ({what})"
        return batch_window(store.con, self.dataset, after, upto, label)

    def _schedule_due(self, state: WorkerState, latest: int) -> bool:
        every = self.settings.retrain_every
        if every is None or latest <= int(state.trained_through_batch or 0):
            return False
        last = state.last_trained()
        return last is None or utc_now() - last >= every

    def _check_drift(
        self,
        reference: EventWindow,
        current: EventWindow,
        champion: Champion | None,
        record: CycleRecord,
    ) -> None:
        context = check_context(self.cfg, self.drift, self.paths, "worker")
        summary = run_check(reference, current, self.drift, context, champion)
        record.action, record.max_psi = summary["action"], summary["max_psi"]
        record.drift_run_id = summary["mlflow_run_id"]

    def _decide(
        self,
        state: WorkerState,
        champion: Champion | None,
        record: CycleRecord,
        due: bool,
        has_reference: bool,
    ) -> str | None:
        """full, fold_in or None (no training), with the reason in `record.retrain_reason`.

        Only called when events arrived since the last training."""
        s = self.settings
        if champion is None:
            record.retrain_reason = "no champion yet"
        elif not has_reference:
            record.retrain_reason = "the champion's training data is not in the store"
        elif record.action in s.retrain_on:
            record.retrain_reason = f"drift: {record.action}"
        elif due:
            every = format_duration(s.retrain_every or timedelta(0))
            record.retrain_reason = f"schedule: {every} since the last training"
        elif s.fold_in and can_fold_in(champion):
            record.retrain_reason = "new data since the last training: fold-in"
            return "fold_in"
        else:
            return None
        return "full"

    def _retrain(self, mode: str, champion: Champion | None, record: CycleRecord) -> None:
        split = prepare_split(self.cfg, self.work_paths, self.dataset)
        if mode == "fold_in" and champion is not None:
            trained = train_fold_in(self.cfg, self.work_paths, split, champion)
        else:
            trained = train_full(self.cfg, self.work_paths, split)
        record.training_mode, record.training_run_id = trained.mode, trained.run_id
        registered = register(self.cfg, self.work_paths, trained, self.settings.promote_to)
        record.model_version, record.promoted_to = registered.version, registered.alias
        record.promotion_reason = registered.reason
        record.outcome = "retrained_promoted" if registered.promoted else "retrained_not_promoted"
