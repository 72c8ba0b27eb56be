"""Where served models come from, and how a new one replaces the old one.

Sources: the live MLflow registry (follow an alias) or a model packed into the BentoML store
(`recops bento build`: no registry at run time). `ModelLoader.refresh` resolves the champion
and challenger aliases, loads what changed (in the calling thread: the background poll or
`/admin/reload`, never a request), builds the serving indexes and warms the cache, and only
then swaps the `Slots` reference. A failed load keeps the old model serving.
"""

from __future__ import annotations

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
from recops.serving.config import ServeConfig
from recops.serving.engine import Slots
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

    def resolve(self, alias: str) -> ModelRef | None:
        """The version `alias` points at now (None: no such alias)."""

    def load(self, ref: ModelRef) -> Recommender: ...

    def precomputed_path(self, ref: ModelRef) -> Path | None: ...


class RegistrySource:
    """Follow aliases of a registered model in the MLflow registry."""

    mode = "live"

    def __init__(self, model_name: str, precomputed: Path | None = None) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow.tracking import MlflowClient

        from recops.tracking.store import configure_tracking

        self.tracking_uri = configure_tracking()
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

    def __init__(self, folder: Callable[[], Path]) -> None:
        self._folder = folder

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


class ModelLoader:
    """Holds the served `Slots`; `refresh` loads what the aliases point at and swaps."""

    def __init__(
        self,
        cfg: ServeConfig,
        source: ModelSource,
        build: Builder,
        on_event: Listener | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self._build = build
        self._on_event = on_event or (lambda kind, data: None)
        self._slots = Slots()
        self._retained: dict[str, ServedModel] = {}  # recently served versions, by ref.key
        self._failed: dict[str, str] = {}  # ref.key -> error (not retried by the poll)
        self._lock = threading.Lock()
        self.last_check: str | None = None
        self.last_error: dict[str, Any] | None = None
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
                log.warning("could not resolve aliases: %s", exc)
                self.last_error = {"at": report["at"], "error": f"registry: {exc}"}
                report["error"] = self.last_error["error"]
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
            challenger = None
            if chall_ref is not None and (champion is None or chall_ref.key != champion.ref.key):
                challenger, report["challenger"] = self._obtain(chall_ref, current, force)
            elif current.challenger is not None:
                report["challenger"] = {"result": "ended", "version": None}
            new = Slots(champion, challenger)
            if new != current:
                self._slots = new  # the atomic swap
                report["changed"] = True
                self._retain(current, new)
                self._on_event("swap", {"old": current, "new": new})
                log.info(
                    "now serving champion %s, challenger %s",
                    champion.ref.key if champion else None,
                    challenger.ref.key if challenger else None,
                )
            if report["changed"] or any(
                isinstance(v, dict) and v.get("result") == "failure" for v in report.values()
            ):
                self.history = [*self.history[-19:], report]
            return report

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
            recommender = self.source.load(ref)
            model = self._build(recommender, ref, self.source.precomputed_path(ref))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._failed[ref.key] = error
            self.last_error = {
                "at": _now(),
                "version": ref.version,
                "alias": ref.alias,
                "error": error,
            }
            log.exception("loading %s (%s) failed; still serving %s", ref.key, ref.alias, kept)
            self._on_event("reload", {"result": "failure", "ref": ref})
            return keep, {"result": "failure", "version": ref.version, "kept": kept, "error": error}
        self._failed.pop(ref.key, None)
        seconds = round(time.perf_counter() - started, 3)
        log.info("loaded %s (%s) in %.2f s", ref.key, ref.alias, seconds)
        self._on_event("reload", {"result": "success", "ref": ref})
        return model, {"result": "loaded", "version": ref.version, "seconds": seconds}

    def _retain(self, old: Slots, new: Slots) -> None:
        """Keep the models a swap replaced (an immediate rollback reuses them), none older."""
        serving = {m.ref.key for _, m in new.served()}
        self._retained = {m.ref.key: m for _, m in old.served() if m.ref.key not in serving}
