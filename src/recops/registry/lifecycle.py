"""The registry lifecycle: candidate -> challenger -> champion, rollback, out-of-band
detection and retention. Every alias move runs its gates, takes the registry lock,
re-checks that the alias still points where it did, moves, and writes an audit record."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import find_project_root
from recops.errors import RegistryError
from recops.registry import history as hist
from recops.registry.audit import (
    OUT_OF_BAND_ACTOR,
    AuditLog,
    AuditRecord,
    current_who,
    utc_now,
    write_audit,
)
from recops.registry.comparison import GateResult
from recops.registry.describe import annotate_version
from recops.registry.gates import GateContext, as_dicts, failed, run_gates
from recops.registry.lock import RegistryLockedError, make_lock
from recops.registry.promotion import promote as set_champion
from recops.registry.registration import (
    create_pending_version,
    ensure_registered_model,
    live_version_for_run,
    mark_complete,
    reconcile_pending,
    version_tags,
)
from recops.registry.settings import RegistrySettings
from recops.registry.versions import (
    ARCHIVED_TAG,
    alias_map,
    get_version,
    is_archived,
    is_usable,
    require_version,
)
from recops.tracking.runs import fail_stale_runs
from recops.tracking.store import is_missing, unreachable

log = logging.getLogger(__name__)
ROLLED_BACK_TAG = "recops.rolled_back_at"
OUT_OF_BAND_REASON = "alias changed outside recops (MLflow UI or another client)"
_DOING = {"promote": "promoting", "rollback": "rolling back", "register": "registering"}


class GatesRefused(RegistryError):
    """A move refused by its gates; `results` has every gate's outcome."""

    def __init__(self, message: str, results: list[GateResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass(frozen=True)
class MoveResult:
    record: AuditRecord
    gates: list[GateResult]


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def require_reason(force: bool, reason: str | None) -> None:
    if force and not (reason and reason.strip()):
        raise RegistryError('--force needs --reason "why": forced moves are audited')


class Registry:
    """One registered model, its aliases and the lifecycle operations on them."""

    def __init__(
        self, cfg: DictConfig, client: MlflowClient | None = None, root: Path | None = None
    ) -> None:
        self.cfg = cfg
        self.root = root or find_project_root()
        self.settings = RegistrySettings.from_config(cfg, self.root)
        self.client = client or MlflowClient()
        self.audit = AuditLog(self.settings.audit_log)
        self._lock_depth = 0

    @property
    def name(self) -> str:
        return self.settings.model_name

    @property
    def champion(self) -> str:
        return self.settings.champion_alias

    def aliases(self) -> dict[str, str]:
        return alias_map(self.client, self.name)

    def exists(self) -> bool:
        try:
            self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if not is_missing(exc):
                raise unreachable(exc) from exc
            return False
        return True

    @contextmanager
    def locked(self, purpose: str, timeout: float | None = None) -> Iterator[None]:
        """The registry lock (re-entrant within this object)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        uri = mlflow.get_registry_uri()
        lock = make_lock(self.client, uri, self.name, purpose, self.settings.lock_ttl_s)
        lock.acquire(self.settings.lock_timeout_s if timeout is None else timeout)
        self._lock_depth = 1
        try:
            yield
        finally:
            self._lock_depth = 0
            lock.release()

    # -- out-of-band moves ------------------------------------------------------------------

    def sync(self, timeout: float | None = None) -> list[AuditRecord]:
        """Audit alias moves made outside recops since it last wrote the alias state."""
        if not self.exists():
            return []
        fail_stale_runs(self.client)
        with self.locked("checking aliases for out-of-band moves", timeout):
            self._reconcile()
            return self._sync()

    def reconcile(self) -> list[AuditRecord]:
        """Recovery after a crash: RUNNING runs of dead processes become FAILED, versions a
        dead process left half-registered are archived (audited)."""
        fail_stale_runs(self.client)
        if not self.exists():
            return []
        with self.locked("recovering interrupted registrations"):
            return self._reconcile()

    def _reconcile(self) -> list[AuditRecord]:
        """Under the lock: archive (audited) versions a dead process left half-registered."""
        return reconcile_pending(self.client, self.audit, self.name, self.settings.list_metrics)

    def try_sync(self) -> list[AuditRecord]:
        """`sync` for read-only commands: skipped (with a warning) while a move holds the lock."""
        try:
            return self.sync(timeout=min(self.settings.lock_timeout_s, 5.0))
        except RegistryLockedError as exc:
            log.warning("out-of-band check skipped: %s", exc)
            return []

    def _sync(self) -> list[AuditRecord]:
        known = hist.read_state(self.client, self.name)
        current = self.aliases()
        if known is None:  # first recops command on this registry: take it as the baseline
            hist.write_state(self.client, self.name, current)
            return []
        records = []
        for change in hist.alias_changes(known, current):
            if change.alias == self.settings.champion_alias:
                moved = hist.after_champion_moved(
                    hist.read_history(self.client, self.name),
                    change.from_version,
                    change.to_version,
                )
                hist.write_history(self.client, self.name, moved)
            record = AuditRecord(
                "out_of_band",
                self.name,
                change.alias,
                change.from_version,
                change.to_version,
                OUT_OF_BAND_REASON,
                actor=OUT_OF_BAND_ACTOR,
                details={"detected_by": current_who()},
            )
            write_audit(self.client, self.audit, record)
            log.warning("out-of-band move recorded: %s", record.summary())
            records.append(record)
        if records:
            hist.write_state(self.client, self.name, current)
        return records

    # -- moves ------------------------------------------------------------------------------

    def context(self, version: str, alias: str, aliases: dict[str, str]) -> GateContext:
        return GateContext(self.client, self.settings, self.cfg, self.root, version, alias, aliases)

    def promote(
        self, ref: str, to: str, force: bool = False, reason: str | None = None
    ) -> MoveResult:
        """Move alias `to` (challenger or champion) to version `ref` if its gates pass."""
        alias = self.settings.target_alias(to)
        require_reason(force, reason)
        self.sync()
        version = self.usable_version(ref)
        aliases = self.aliases()
        expected = aliases.get(alias)
        if expected == version:
            raise RegistryError(f"v{version} is already the {alias}")
        if alias == self.settings.challenger_alias and aliases.get(self.champion) == version:
            raise RegistryError(f"v{version} is the champion; a challenger must be another version")
        results = run_gates(self.settings.gates_for(alias), self.context(version, alias, aliases))
        self.check_gates(results, alias, expected, version, force, reason)
        why = reason or "all gates passed"
        return self.commit(alias, version, expected, "promote", why, results, force)

    def usable_version(self, ref: str) -> str:
        found = require_version(self.client, self.name, ref)
        if is_archived(found):
            raise RegistryError(
                f"v{found.version} is archived ({found.tags[ARCHIVED_TAG]}); "
                f"restore it first: recops registry restore {found.version}"
            )
        return str(found.version)

    def check_gates(
        self,
        results: list[GateResult],
        alias: str,
        expected: str | None,
        version: str,
        force: bool,
        reason: str | None,
    ) -> None:
        """Refuse (audited as `refused`) when a gate failed, unless forced."""
        bad = failed(results)
        if not bad or force:
            return
        named = "; ".join(f"gate {g.name} failed: {g.detail}" for g in bad)
        self.audit.append(
            AuditRecord(
                "refused",
                self.name,
                alias,
                expected,
                version,
                reason or named,
                gates=as_dicts(results),
            )
        )
        raise GatesRefused(
            f"v{version} -> {alias} refused: {named} "
            '(override with --force --reason "why"; it is audited)',
            results,
        )

    def commit(
        self,
        alias: str,
        version: str,
        expected: str | None,
        action: str,
        reason: str,
        gates: list[GateResult],
        forced: bool = False,
    ) -> MoveResult:
        """Under the lock: re-check `alias` still is `expected`, move it, audit it."""
        with self.locked(f"{action} v{version} to {alias}"):
            self._sync()
            now = self.aliases().get(alias)
            if now != expected:
                raise RegistryError(
                    f"{alias} changed from {_v(expected)} to {_v(now)} while you were "
                    f"{_DOING.get(action, action)} v{version}; nothing was changed "
                    "(see `recops registry list`, then try again)"
                )
            self._move(alias, version, expected, action)
            record = AuditRecord(
                action,
                self.name,
                alias,
                expected,
                version,
                reason,
                forced=forced,
                gates=as_dicts(gates),
            )
            write_audit(self.client, self.audit, record)
            hist.write_state(self.client, self.name, self.aliases())
        log.debug("%s", record.summary())
        return MoveResult(record, gates)

    def _move(self, alias: str, version: str, previous: str | None, action: str) -> None:
        s = self.settings
        champion = alias == s.champion_alias
        if champion and action != "rollback":
            set_champion(self.client, s, version, previous)
            history = hist.read_history(self.client, self.name)
            hist.write_history(self.client, self.name, hist.pushed(history, previous))
        else:
            self.client.set_registered_model_alias(self.name, alias, version)
        if champion and self.aliases().get(s.challenger_alias) == version:
            self.client.delete_registered_model_alias(self.name, s.challenger_alias)

    def register_run(
        self, run_id: str, model_uri: str, metrics: dict[str, float]
    ) -> tuple[str, bool]:
        """Register the run's logged model as the candidate: (version, created).

        Two phases under the registry lock (see `recops.registry.registration`): the version
        is created pending, described, made candidate (audited), then marked complete. A run
        that already has a complete version gets no second one.
        """
        fail_stale_runs(self.client)
        ensure_registered_model(self.client, self.name)  # a tag lock needs the model
        with self.locked(f"register run {run_id}"):
            self._reconcile()
            self._sync()
            existing = live_version_for_run(self.client, self.name, run_id)
            if existing is not None:
                number, created = str(existing.version), False
                log.info("run %s is already version %s of %s", run_id, number, self.name)
            else:
                tags = version_tags(self.client, run_id, metrics, self.settings.metric)
                number = create_pending_version(self.client, self.name, run_id, model_uri, tags)
                annotate_version(self.client, self.name, number, run_id, self.settings.metric)
                created = True
            self.register_candidate(number)
            if created:
                mark_complete(self.client, self.name, number)
        return number, created

    def register_candidate(self, version: str) -> AuditRecord | None:
        """Point the candidate alias at a newly registered version (audited)."""
        alias = self.settings.candidate_alias
        with self.locked(f"register v{version} as {alias}"):
            self._sync()
            before = self.aliases().get(alias)
            if before == version:
                return None
            self.client.set_registered_model_alias(self.name, alias, version)
            record = AuditRecord(
                "register", self.name, alias, before, version, "registered by the register stage"
            )
            write_audit(self.client, self.audit, record)
            hist.write_state(self.client, self.name, self.aliases())
        return record

    # -- rollback ---------------------------------------------------------------------------

    def rollback(self, force: bool = False, reason: str | None = None) -> MoveResult:
        """Champion back to the previous champion; never loads the current champion."""
        require_reason(force, reason)
        self.sync()
        alias = self.settings.champion_alias
        aliases = self.aliases()
        current = aliases.get(alias)
        history = hist.read_history(self.client, self.name)
        target, remaining, skipped = hist.rollback_target(
            history, current, lambda v: is_usable(self.client, self.name, v)
        )
        if target is None:
            gone = f" (skipped archived/deleted: {', '.join(skipped)})" if skipped else ""
            raise RegistryError(f"no previous champion to roll back to{gone}")
        results = run_gates(
            self.settings.gates_for("rollback"), self.context(target, alias, aliases)
        )
        self.check_gates(results, alias, current, target, force, reason)
        with self.locked(f"rollback {_v(current)} to v{target}"):
            self._sync()
            if hist.read_history(self.client, self.name) != history:
                raise RegistryError("the champion history changed while you were rolling back")
            result = self.commit(
                alias,
                target,
                current,
                "rollback",
                reason or "rolled back to the previous champion",
                results,
                force,
            )
            hist.write_history(self.client, self.name, remaining)
            self._mark_rolled_back(current, result.record.reason)
        if skipped:
            log.info("rollback skipped archived/deleted versions %s", ", ".join(skipped))
        return result

    def _mark_rolled_back(self, version: str | None, reason: str) -> None:
        if version is None or get_version(self.client, self.name, version) is None:
            return
        value = f"{utc_now()} {current_who()}: {reason}"
        self.client.set_model_version_tag(self.name, version, ROLLED_BACK_TAG, value)
