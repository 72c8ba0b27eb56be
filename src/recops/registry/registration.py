"""Registering a run's model as a new version, in two phases, and recovering from a crash.

A version is created with the tag `recops.registration=pending`; the candidate alias, the
description and the audit record follow, and only then the tag becomes `complete`. All of it
runs under the registry lock, so a version still `pending` when the lock is free again was left
by a process that died half-way (e.g. `kill -9`). The next registry command, register stage or
worker cycle archives such a version (audited: nothing points at it, and its run may have
been cut short); a re-run registers the run again as a new, complete version.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.errors import RegistryError
from recops.faults import pause_point
from recops.registry.audit import AuditLog, AuditRecord, utc_now, write_audit
from recops.registry.versions import (
    ARCHIVED_BY_TAG,
    ARCHIVED_TAG,
    get_version,
    is_archived,
    run_view,
)
from recops.tracking.model_files import CHECKSUM_TAG

log = logging.getLogger(__name__)
REGISTRATION_TAG = "recops.registration"
PENDING, COMPLETE = "pending", "complete"
RUN_TAGS = ("model_type", "dataset", "data_snapshot", "split", "git_commit")
INTERRUPTED = "registration interrupted (the registering process died); archived by recovery"
_DESCRIPTION = "Recommenders trained by RecOps."


def version_tags(
    client: MlflowClient, run_id: str, metrics: dict[str, float], metric: str
) -> dict[str, str]:
    """The run's provenance tags, the headline metric and the files' checksums (required:
    RecOps loads a version only from checksum-verified files)."""
    run_tags = client.get_run(run_id).data.tags
    if CHECKSUM_TAG not in run_tags:
        raise RegistryError(
            f"run {run_id} has no file checksums (tag {CHECKSUM_TAG}): it was not logged by "
            "this version of RecOps; train it again to register it"
        )
    tags = {k: run_tags[k] for k in (*RUN_TAGS, CHECKSUM_TAG) if k in run_tags}
    value = metrics.get(metric)
    if value is not None:
        tags[metric] = f"{value:.6f}"
    return tags


def is_pending(version: ModelVersion) -> bool:
    return str((version.tags or {}).get(REGISTRATION_TAG, "")).startswith(PENDING)


def live_version_for_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The complete, not archived version already made from `run_id` (re-runs create none)."""
    try:
        versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException:
        return None
    live = [v for v in versions if not is_archived(v) and not is_pending(v)]
    return min(live, key=lambda v: int(v.version)) if live else None


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model if it does not exist (quietly: no "already exists")."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description=_DESCRIPTION)


def create_pending_version(
    client: MlflowClient, name: str, run_id: str, model_uri: str, tags: dict[str, str]
) -> str:
    """A new version of `model_uri` tagged pending; returns its number."""
    ensure_registered_model(client, name)
    marker = json.dumps({"at": utc_now(), "host": socket.gethostname()})
    model_id = logged_model_id_of(model_uri)
    version = client.create_model_version(
        name,
        source=model_uri,
        run_id=run_id,
        tags={**tags, REGISTRATION_TAG: f"{PENDING} {marker}"},
        model_id=model_id,
    )
    number = str(version.version)
    if model_id:
        link_logged_model(client, model_id, name, number)
    pause_point("registration-created")
    return number


def mark_complete(client: MlflowClient, name: str, version: str) -> None:
    client.set_model_version_tag(name, version, REGISTRATION_TAG, COMPLETE)


def logged_model_id_of(model_uri: str) -> str | None:
    if model_uri.startswith("models:/m-"):
        return model_uri.removeprefix("models:/").split("/")[0]
    return None


def link_logged_model(client: MlflowClient, model_id: str, name: str, version: str) -> None:
    """What `mlflow.register_model` does besides creating the version: list the version on
    the LoggedModel (the UI links them)."""
    key = "mlflow.modelVersions"
    try:
        existing = client.get_logged_model(model_id).tags.get(key)
        value = (json.loads(existing) if existing else []) + [{"name": name, "version": version}]
        client.set_logged_model_tags(model_id, {key: json.dumps(value)})
    except MlflowException as exc:  # cosmetic: the version itself is registered
        log.debug("could not link logged model %s to %s v%s: %s", model_id, name, version, exc)


def archive_version(
    client: MlflowClient,
    audit: AuditLog,
    name: str,
    version: str,
    reason: str,
    metric_names: tuple[str, ...] = (),
) -> AuditRecord:
    """Audit (with the version's key metrics), then tag the version archived."""
    found = get_version(client, name, version)
    run_id = found.run_id if found else None
    run = run_view(client, run_id)
    metrics = {m: run.metrics[m] for m in metric_names if m in run.metrics}
    record = AuditRecord(
        "archive", name, None, version, None, reason,
        details={"metrics": metrics, "run_id": run_id},
    )  # fmt: skip
    write_audit(client, audit, record)
    client.set_model_version_tag(name, version, ARCHIVED_TAG, record.at)
    client.set_model_version_tag(name, version, ARCHIVED_BY_TAG, record.who)
    return record


def pending_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Versions still tagged pending (call under the registry lock: then they are orphans)."""
    try:
        found: list[Any] = client.search_model_versions(
            f"name='{name}' and tag.`{REGISTRATION_TAG}` LIKE '{PENDING}%'"
        )
    except MlflowException:
        return []
    return [v for v in found if is_pending(v) and not is_archived(v)]


def reconcile_pending(
    client: MlflowClient, audit: AuditLog, name: str, metric_names: tuple[str, ...] = ()
) -> list[AuditRecord]:
    """Archive (audited) every version a dead process left pending; mark them complete so
    they are handled once."""
    records = []
    for version in pending_versions(client, name):
        number = str(version.version)
        records.append(archive_version(client, audit, name, number, INTERRUPTED, metric_names))
        mark_complete(client, name, number)
        log.warning("%s v%s: %s", name, number, INTERRUPTED)
    return records
