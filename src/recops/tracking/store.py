"""Where runs and the registry live: `$MLFLOW_TRACKING_URI`, else SQLite in the project."""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recops.config import shared_state_root
from recops.errors import StoreUnreachableError
from recops.redaction import install_log_redaction, redact

log = logging.getLogger(__name__)
DB_FILE = "mlflow.db"
#: Makes the MLflow UI treat RecOps experiments as model development (not GenAI).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
ARTIFACT_DIR = "mlartifacts"


def default_tracking_uri(root: Path | None = None) -> str:
    """SQLite store in the real project root (also from `dvc exp run --temp` copies)."""
    return f"sqlite:///{shared_state_root(root) / DB_FILE}"


def configure_tracking(root: Path | None = None) -> str:
    """Point MLflow at the configured store and return its URI.

    The registry follows the tracking store unless `$MLFLOW_REGISTRY_URI` says otherwise
    (MLflow reads that itself; setting it here would leak into the process environment).
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    install_log_redaction()  # the URI may hold a password: no log line of this process shows it
    return uri


#: MLflow error codes meaning "no such object" (anything else: the store itself failed).
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def is_missing(exc: MlflowException) -> bool:
    """Whether the store answered "does not exist" (not an outage or a server error)."""
    return exc.error_code in MISSING_CODES


def unreachable(exc: Exception, uri: str | None = None) -> StoreUnreachableError:
    """The error to raise when the store did not answer properly: names the store (without
    credentials) and the cause, instead of blaming a missing model."""
    uri = uri or mlflow.get_registry_uri()
    cause = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    if "Connection refused" in cause or "NewConnectionError" in cause:
        cause = "connection refused"
    elif "timed out" in cause.lower() or "Read timed out" in cause:
        cause = "timed out"
    return StoreUnreachableError(
        f"the MLflow store at {redact(uri)} is unreachable or failing ({redact(cause)[:300]}); "
        "check MLFLOW_TRACKING_URI and that the tracking server runs"
    )


def artifact_location_for(tracking_uri: str) -> str | None:
    """Artifacts next to a local SQLite database (`<db folder>/mlartifacts`); a tracking
    server keeps its own artifact root (None).

    Without this MLflow would put them under `./mlruns` of whatever folder the process runs in.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix) :]).resolve().parent / ARTIFACT_DIR).as_uri()


def ensure_experiment(name: str, root: Path | None = None) -> str:
    """Id of experiment `name`, created with a proper artifact location if new."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
            client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )
        return str(experiment.experiment_id)
    location = artifact_location_for(mlflow.get_tracking_uri())
    experiment_id = client.create_experiment(name, artifact_location=location)
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    log.info("created MLflow experiment %r (%s), artifacts in %s", name, experiment_id, location)
    return str(experiment_id)


def git_commit(root: Path | None = None) -> str:
    """The checked-out commit (with `-dirty` if the tree has changes), or `unknown`."""
    cwd = shared_state_root(root)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty.strip() else sha


@dataclass(frozen=True)
class DataSnapshot:
    """The data a run used, as MLflow shows it: a name, a content digest, where it lives."""

    name: str
    digest: str
    source: str


def log_dataset_input(
    data: DataSnapshot, context: str = "training", run_id: str | None = None
) -> None:
    """Record `data` as a dataset input of run `run_id` (default: the active run): the MLflow
    UI's Dataset column and lineage. No data is read or copied."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with warnings.catch_warnings():  # MLflow registers the local source twice and says so
        warnings.simplefilter("ignore", UserWarning)
        source_obj = resolve_dataset_source(data.source)
    # MetaDataset: a dataset described by name, digest and source only (mypy sees `profile` as
    # abstract; MLflow implements it)
    dataset = MetaDataset(source_obj, name=data.name, digest=data.digest[:36] or None)  # type: ignore[abstract]
    if run_id is None:
        mlflow.log_input(dataset, context=context)
        return
    entry = DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, context)])
    MlflowClient().log_inputs(run_id, datasets=[entry])
