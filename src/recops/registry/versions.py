"""Reading registered versions and aliases the way the SQLite store gets them right.

`search_model_versions` returns versions with an empty `aliases` list from the SQLite store,
so aliases always come from `get_registered_model(name).aliases`. Versions are strings here
(MLflow returns int or str depending on the store).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.errors import RegistryError
from recops.redaction import redact
from recops.tracking.store import is_missing, unreachable

#: Set by `recops registry prune` on versions it archives (value: when); see README.
ARCHIVED_TAG = "recops.archived"
ARCHIVED_BY_TAG = "recops.archived_by"


def alias_map(client: MlflowClient, name: str) -> dict[str, str]:
    """alias -> version of registered model `name` (RegistryError if there is no such model)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not is_missing(exc):
            raise unreachable(exc) from exc
        raise RegistryError(
            f"no registered model {name!r} in {redact(mlflow.get_registry_uri())}: "
            "train and register a model first (recops train ...)"
        ) from exc
    return {str(alias): str(version) for alias, version in model.aliases.items()}


def aliases_by_version(aliases: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        out.setdefault(version, []).append(alias)
    return out


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion | None:
    """The version, or None when it does not exist (deleted, or never registered)."""
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if not is_missing(exc) and exc.error_code != "INVALID_PARAMETER_VALUE":
            raise unreachable(exc) from exc
        return None


def resolve_ref(client: MlflowClient, name: str, ref: str) -> str:
    """A version number from `3`, `v3`, `champion` or `@champion`."""
    text = ref.strip()
    if text.lower().startswith("v") and text[1:].isdigit():
        text = text[1:]
    if text.isdigit():
        return text
    alias = text.lstrip("@")
    version = alias_map(client, name).get(alias)
    if version is None:
        raise RegistryError(f"{ref!r} is neither a version number nor an alias of {name}")
    return version


def require_version(client: MlflowClient, name: str, ref: str) -> ModelVersion:
    number = resolve_ref(client, name, ref)
    found = get_version(client, name, number)
    if found is None:
        alias_map(client, name)  # a clearer error when the model itself is missing
        raise RegistryError(f"{name} has no version {number}")
    return found


def is_archived(version: ModelVersion) -> bool:
    return ARCHIVED_TAG in (version.tags or {})


def is_usable(client: MlflowClient, name: str, version: str) -> bool:
    """The version exists and was not archived (rollback skips the others)."""
    found = get_version(client, name, version)
    return found is not None and not is_archived(found)


def all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of `name`, newest first (paginated)."""
    out: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(f"name='{name}'", page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            break
    return sorted(out, key=lambda v: int(v.version), reverse=True)


@dataclass(frozen=True)
class RunView:
    """What the list and diff commands show of a version's run."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_view(client: MlflowClient, run_id: str | None) -> RunView:
    if not run_id:
        return RunView({}, {}, {})
    try:
        data = client.get_run(run_id).data
    except MlflowException:
        return RunView({}, {}, {})
    return RunView(dict(data.params), dict(data.metrics), dict(data.tags))
