"""Where served models come from, and how a new one replaces the old one.

Sources: the live MLflow registry (follow an alias) or a model packed into the BentoML store
(`recops bento build`: no registry at run time). `ModelLoader.refresh` resolves the champion
and challenger aliases, loads what changed (in the calling thread: the background poll or
`/admin/reload`, never a request), builds the serving indexes and warms the cache, and only
then swaps the `Slots` reference. A failed load keeps the old model serving.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from recops.models.recommender import Recommender
from recops.redaction import redact
from recops.serving.config import ServeConfig
from recops.serving.engine import Slots
from recops.serving.errors import short_error
from recops.serving.lastgood import SOURCE, LastGoodStore
from recops.serving.refs import ModelRef
from recops.serving.served import ServedModel

log = logging.getLogger(__name__)
PACKAGED_RECOMMENDER = "recommender"
PACKAGED_REF = "serving.json"
PACKAGED_PRECOMPUTED = "precomputed.parquet"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelSource(Protocol):
    mode: str
    where: str  # for messages (a URI without password)

    def resolve(self, alias: str) -> ModelRef | None:
        """The version `alias` points at now (None: no such alias)."""

    def load(self, ref: ModelRef) -> Recommender: ...

    def precomputed_path(self, ref: ModelRef) -> Path | None: ...

    def past_champions(self) -> list[str]:
        """Versions that were champion before, newest first."""

    def resolve_version(self, version: str, alias: str) -> ModelRef | None: ...


class RegistrySource:
    """Follow aliases of a registered model in the MLflow registry."""

    mode = "live"

    def __init__(self, model_name: str, precomputed: Path | None = None) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow.tracking import MlflowClient

        from recops.tracking.store import configure_tracking

        self.tracking_uri = configure_tracking()
        self.where = redact(self.tracking_uri)
        self.model_name = model_name
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._precomputed = precomputed

    def resolve(self, alias: str) -> ModelRef | None:
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return self._ref(version, alias)

    def past_champions(self) -> list[str]:
        """Past champion versions, newest first (README "History and rollback")."""
        from recops.registry.history import read_history

        return list(reversed(read_history(self.client, self.model_name)))

    def resolve_version(self, version: str, alias: str) -> ModelRef | None:
        """`version` as if `alias` pointed at it (None: deleted or archived)."""
        from mlflow.exceptions import MlflowException

        from recops.registry.versions import ARCHIVED_TAG

        try:
            found = self.client.get_model_version(self.model_name, version)
        except MlflowException:
            return None
        if (found.tags or {}).get(ARCHIVED_TAG):
            return None
        return self._ref(found, alias)

    def _ref(self, version: Any, alias: str) -> ModelRef:
        tags = dict(version.tags or {})
        return ModelRef(
            model_name=self.model_name,
            version=str(version.version),
            alias=alias,
            source="registry",
            run_id=version.run_id,
            model_type=tags.get("model_type"),
            data_snapshot=tags.get("data_snapshot"),
            uri=f"models:/{self.model_name}/{version.version}",
        )

    def load(self, ref: ModelRef) -> Recommender:
        """The version's checksum-verified recommender files, read by the installed code
        (nothing from the artifact store is executed)."""
        from recops.tracking.model_files import load_registered_recommender

        return load_registered_recommender(self.client, self.model_name, str(ref.version))

    def precomputed_path(self, ref: ModelRef) -> Path | None:
        return self._precomputed if self._precomputed and self._precomputed.is_file() else None


class PackagedSource:
    """The model inside the BentoML model store / bento (written by `recops bento build`)."""

    mode = "packaged"
    where = "the packaged model"

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._folder = folder

    def past_champions(self) -> list[str]:
        return []

    def resolve_version(self, version: str, alias: str) -> ModelRef | None:
        return None

    def folder(self) -> Path:
        return self._folder()

    def resolve(self, alias: str) -> ModelRef | None:
        stored = json.loads((self.folder() / PACKAGED_REF).read_text())
        # whatever was packaged is served (as the champion: packaged mode has no canary)
        return ModelRef.from_dict({**stored, "source": "packaged"})

    def load(self, ref: ModelRef) -> Recommender:
        return Recommender.load(self.folder() / PACKAGED_RECOMMENDER)

    def precomputed_path(self, ref: ModelRef) -> Path | None:
        path = self.folder() / PACKAGED_PRECOMPUTED
        return path if path.is_file() else None


Builder = Callable[[Recommender, ModelRef, Path | None], ServedModel]
Listener = Callable[[str, dict[str, Any]], None]
#: Past champions tried (newest first) when the champion cannot load and nothing is served.
MAX_PAST_CHAMPIONS = 3
HISTORY_SOURCE = "registry (past champion)"


class ModelLoader:
    """Holds the served `Slots`; `refresh` loads what the aliases point at and swaps.

    With nothing served yet (start-up), a champion that cannot load (or a registry that cannot
    be reached) is replaced by the last known good version: a past champion from the registry
    history, else the local last-good copy. `degraded` then says what is served instead of
    what, and why, until the champion itself loads.
    """

    def __init__(
        self,
        cfg: ServeConfig,
        source: ModelSource,
        build: Builder,
        on_event: Listener | None = None,
        last_good: LastGoodStore | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.last_good = last_good
        self._build = build
        self._on_event = on_event or (lambda kind, data: None)
        self._slots = Slots()
        self._retained: dict[str, ServedModel] = {}  # recently served versions, by ref.key
        self._failed: dict[str, str] = {}  # ref.key -> error (not retried by the poll)
        self._lock = threading.Lock()
        self.last_check: str | None = None
        self.last_error: dict[str, Any] | None = None
        self.degraded: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    @property
    def slots(self) -> Slots:
        return self._slots

    @property
    def canary_wanted(self) -> bool:
        c = self.cfg.canary
        return self.source.mode == "live" and c.enabled and c.share > 0

    def not_ready_reason(self) -> str:
        if self.last_error:
            return str(self.last_error.get("error"))
        return "the first load has not finished"

    def refresh(self, force: bool = False) -> dict[str, Any]:
        """Check the aliases and load what changed; returns what happened per role.

        `force` retries versions whose load failed before (the poll skips them).
        """
        with self._lock:
            current = self._slots
            report: dict[str, Any] = {"at": _now(), "changed": False}
            try:
                champ_ref = self.source.resolve(self.cfg.alias)
                chall_ref = (
                    self.source.resolve(self.cfg.challenger_alias) if self.canary_wanted else None
                )
            except Exception as exc:  # registry unreachable: keep serving what we have
                error = f"registry unreachable at {self.source.where}: {short_error(exc)}"
                log.warning("%s", error)
                self.last_error = {"at": report["at"], "error": error}
                report["error"] = error
                self._on_event("reload", {"result": "failure", "ref": None})
                if current.champion is None:
                    self._swap(current, Slots(self._last_good(error)), report)
                return report
            self.last_check = report["at"]
            champion = current.champion
            if champ_ref is None:
                report["champion"] = {"result": "missing", "alias": self.cfg.alias}
                if champion is None:
                    self.last_error = {
                        "at": report["at"],
                        "error": f"alias {self.cfg.alias!r} of {self.cfg.model_name} not found",
                    }
            else:
                champion, report["champion"] = self._obtain(champ_ref, current, force)
                if champion is None:
                    champion = self._substitute(champ_ref, report["champion"]["error"])
                self._note_degraded(champ_ref, champion, report["champion"])
            challenger = None
            if chall_ref is not None and (champion is None or chall_ref.key != champion.ref.key):
                challenger, report["challenger"] = self._obtain(chall_ref, current, force)
            elif current.challenger is not None:
                report["challenger"] = {"result": "ended", "version": None}
            self._swap(current, Slots(champion, challenger), report)
            if report["changed"] or any(
                isinstance(v, dict) and v.get("result") == "failure" for v in report.values()
            ):
                self.history = [*self.history[-19:], report]
            return report

    def _swap(self, current: Slots, new: Slots, report: dict[str, Any]) -> None:
        if new == current:
            return
        self._slots = new  # the atomic swap
        report["changed"] = True
        self._retain(current, new)
        self._on_event("swap", {"old": current, "new": new})
        log.info(
            "now serving champion %s, challenger %s",
            new.champion.ref.key if new.champion else None,
            new.challenger.ref.key if new.challenger else None,
        )

    def _obtain(
        self, ref: ModelRef, current: Slots, force: bool
    ) -> tuple[ServedModel | None, dict[str, Any]]:
        """The served model for `ref` (reused or loaded), or the current one if loading fails."""
        for role, model in current.served():
            if model.ref.key == ref.key:
                return model, {"result": "unchanged", "version": ref.version, "was": role}
        if ref.key in self._retained:
            return self._retained[ref.key], {"result": "reused", "version": ref.version}
        keep = current.champion if ref.alias == self.cfg.alias else None
        kept = keep.ref.version if keep else None
        if ref.key in self._failed and not force:
            return keep, {
                "result": "skipped",
                "version": ref.version,
                "kept": kept,
                "error": self._failed[ref.key],
            }
        started = time.perf_counter()
        try:
            model = self._load(ref)
        except Exception as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            self._failed[ref.key] = error
            self.last_error = {
                "at": _now(),
                "version": ref.version,
                "alias": ref.alias,
                "error": error,
            }
            log.error(
                "loading %s (%s) failed; still serving %s: %s",
                ref.key,
                ref.alias,
                kept,
                error,
            )
            self._on_event("reload", {"result": "failure", "ref": ref})
            return keep, {"result": "failure", "version": ref.version, "kept": kept, "error": error}
        self._failed.pop(ref.key, None)
        seconds = round(time.perf_counter() - started, 3)
        log.info("loaded %s (%s) in %.2f s", ref.key, ref.alias, seconds)
        self._on_event("reload", {"result": "success", "ref": ref})
        if ref.alias == self.cfg.alias and self.last_good is not None:
            self._keep_copy(ref, model)
        return model, {"result": "loaded", "version": ref.version, "seconds": seconds}

    def _load(self, ref: ModelRef) -> ServedModel:
        recommender = self.source.load(ref)
        return self._build(recommender, ref, self.source.precomputed_path(ref))

    def _keep_copy(self, ref: ModelRef, model: ServedModel) -> None:
        assert self.last_good is not None
        try:
            self.last_good.save(ref, model.recommender)
        except Exception as exc:  # a missing copy must not fail a load that worked
            log.warning("could not keep a last-good copy of %s: %s", ref.key, exc)

    # -- degraded start --------------------------------------------------------------------
    def _substitute(self, wanted: ModelRef, error: str) -> ServedModel | None:
        """With nothing served, the newest past champion that loads, else the local copy."""
        for version in self._past_champions(wanted):
            found = self.source.resolve_version(version, self.cfg.alias)
            if found is None or found.key in self._failed:
                continue
            ref = dataclasses.replace(found, source=HISTORY_SOURCE)
            try:
                model = self._load(ref)
            except Exception as exc:
                self._failed[ref.key] = redact(f"{type(exc).__name__}: {exc}")
                log.warning("past champion %s does not load either: %s", ref.key, short_error(exc))
                continue
            log.warning("champion %s cannot load; serving past champion %s", wanted.key, ref.key)
            return model
        return self._last_good(f"champion v{wanted.version} cannot load: {error}")

    def _past_champions(self, wanted: ModelRef) -> list[str]:
        try:
            versions = self.source.past_champions()
        except Exception as exc:
            log.warning("could not read the champion history: %s", short_error(exc))
            return []
        return [v for v in dict.fromkeys(versions) if v != wanted.version][:MAX_PAST_CHAMPIONS]

    def _last_good(self, reason: str) -> ServedModel | None:
        if self.last_good is None:
            return None
        try:
            found = self.last_good.load()
            if found is None:
                return None
            ref, recommender = found
            model = self._build(recommender, ref, None)
        except Exception as exc:
            log.error("the last-good copy in %s does not load: %s", self.last_good.folder, exc)
            return None
        log.warning("%s; serving the last-good copy of %s", reason, ref.key)
        self.degraded = {
            "reason": reason,
            "serving_version": ref.version,
            "serving_from": SOURCE,
            "wanted_version": None,
            "since": _now(),
        }
        return model

    def _note_degraded(
        self, wanted: ModelRef, served: ServedModel | None, result: dict[str, Any]
    ) -> None:
        """`degraded`: the champion alias points at a version that is not the one served."""
        if served is None or served.ref.key == wanted.key:
            self.degraded = None
            return
        since = (self.degraded or {}).get("since") or _now()
        self.degraded = {
            "reason": f"champion v{wanted.version} cannot load: {result.get('error')}",
            "serving_version": served.ref.version,
            "serving_from": served.ref.source,
            "wanted_version": wanted.version,
            "since": since,
        }

    def _retain(self, old: Slots, new: Slots) -> None:
        """Keep the models a swap replaced (an immediate rollback reuses them), none older."""
        serving = {m.ref.key for _, m in new.served()}
        self._retained = {m.ref.key: m for _, m in old.served() if m.ref.key not in serving}
