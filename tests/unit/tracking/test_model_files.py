"""RecOps loads registered models from checksum-verified plain files: a crafted pickle or code
file in the artifact store is never executed, and a changed file is named."""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import compose
from recops.errors import ArtifactIntegrityError
from recops.features.dataset import Dataset
from recops.models.itemknn import ItemKNNModel
from recops.models.recommender import Recommender
from recops.monitoring.stage import load_champion
from recops.registry.gates import GateContext, run_gates
from recops.registry.settings import RegistrySettings
from recops.serving.loader import RegistrySource
from recops.serving.refs import ModelRef
from recops.tracking.model_files import (
    CHECKSUM_TAG,
    fetch_verified,
    load_registered_recommender,
    verify_files,
)
from recops.tracking.pyfunc import log_pyfunc
from recops.tracking.store import configure_tracking, ensure_experiment

NAME = "recops-recommender"


class Trap:
    """Unpickling this writes a marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pickle executed"))


@pytest.fixture
def cfg(tmp_path: Path, mlflow_store: str) -> DictConfig:
    return compose([f"paths.reports_dir={tmp_path / 'reports'}"])


@pytest.fixture
def registered(random_dataset: Dataset, tmp_path: Path, cfg: DictConfig) -> MlflowClient:
    """v1 of NAME (champion): an item-kNN recommender logged by `log_pyfunc`, registered
    with the run's checksum tag."""
    model = ItemKNNModel(k_neighbours=10).fit(random_dataset)
    recommender = Recommender.from_training(model, random_dataset)
    recommender.save(tmp_path / "rec")
    configure_tracking()
    with mlflow.start_run(experiment_id=ensure_experiment("test")) as run:
        info = log_pyfunc(recommender, tmp_path / "rec", pip_requirements=["numpy"])
    client = MlflowClient()
    client.create_registered_model(NAME)
    tags = {CHECKSUM_TAG: client.get_run(run.info.run_id).data.tags[CHECKSUM_TAG]}
    client.create_model_version(NAME, info.model_uri, run.info.run_id, tags=tags)
    client.set_registered_model_alias(NAME, "champion", "1")
    return client


def model_dir(client: MlflowClient) -> Path:
    uri = client.get_model_version_download_uri(NAME, "1")
    return Path(uri.removeprefix("file://"))


def plant_traps(client: MlflowClient, tmp_path: Path) -> Path:
    """A crafted python_model.pkl and a models-from-code file that both write a marker."""
    marker = tmp_path / "executed.txt"
    folder = model_dir(client)
    (folder / "python_model.pkl").write_bytes(pickle.dumps(Trap(marker)))
    for code in folder.rglob("*.py"):
        code.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('code')\n")
    return marker


def test_the_traps_do_run_when_mlflow_loads_the_pyfunc(
    registered: MlflowClient, tmp_path: Path
) -> None:
    """The hostile files are real: MLflow's own loader executes them (so the next test can
    fail)."""
    marker = plant_traps(registered, tmp_path)
    with contextlib.suppress(Exception):  # what happens after the trap ran does not matter
        mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert marker.exists()


def test_promote_serve_drift_and_worker_loading_execute_nothing(
    registered: MlflowClient, tmp_path: Path, cfg: DictConfig
) -> None:
    marker = plant_traps(registered, tmp_path)
    settings = RegistrySettings.from_config(cfg)
    ctx = GateContext(registered, settings, cfg, tmp_path, "1", "challenger", {"champion": "1"})
    gates = run_gates(["artifacts", "loads", "smoke"], ctx)  # promote and rollback gates
    assert all(g.passed for g in gates), gates
    ref = ModelRef(model_name=NAME, version="1", alias="champion", source="registry")
    served = RegistrySource(NAME).load(ref)  # the service
    champion = load_champion(cfg)  # `recops drift`, the drift stage and the worker
    assert champion is not None and champion.version == "1"
    assert len(served.items) == len(champion.recommender.items) == 40
    assert not marker.exists()


def test_a_truncated_file_fails_the_artifacts_gate_naming_it(
    registered: MlflowClient, tmp_path: Path, cfg: DictConfig
) -> None:
    similarity = next(model_dir(registered).rglob("similarity.npz"))
    similarity.write_bytes(similarity.read_bytes()[:100])
    settings = RegistrySettings.from_config(cfg)
    ctx = GateContext(registered, settings, cfg, tmp_path, "1", "challenger", {})
    artifacts, loads = run_gates(["artifacts", "loads"], ctx)
    assert not artifacts.passed and "model/similarity.npz" in artifacts.detail
    assert "checksum" in artifacts.detail and not loads.passed
    with pytest.raises(ArtifactIntegrityError, match=r"model/similarity\.npz"):
        load_registered_recommender(registered, NAME, "1")


def test_an_extra_or_missing_file_is_refused(registered: MlflowClient, tmp_path: Path) -> None:
    folder = fetch_verified(registered, NAME, "1", tmp_path)
    expected = {p.relative_to(folder).as_posix(): "" for p in folder.rglob("*") if p.is_file()}
    (folder / "model" / "recency_decay.npz").write_bytes(b"x")
    with pytest.raises(ArtifactIntegrityError, match="unexpected file"):
        verify_files(folder, {k: _sha(folder / k) for k in expected}, "v1")
    with pytest.raises(ArtifactIntegrityError, match=r"file extra\.json is missing"):
        verify_files(folder, {"extra.json": "0" * 64}, "v1")


def test_a_version_without_checksums_is_not_loaded(registered: MlflowClient) -> None:
    registered.delete_model_version_tag(NAME, "1", CHECKSUM_TAG)
    with pytest.raises(ArtifactIntegrityError, match="no recorded file checksums"):
        load_registered_recommender(registered, NAME, "1")


def _sha(path: Path) -> str:
    from recops.data.hashing import file_sha256

    return file_sha256(path)
