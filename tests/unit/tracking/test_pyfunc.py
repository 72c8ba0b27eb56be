"""The pyfunc flavour, logged to and loaded from a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from recops.columns import Columns
from recops.features.dataset import Dataset
from recops.models.als import ALSModel
from recops.models.recommender import Recommender
from recops.tracking.pyfunc import log_pyfunc
from recops.tracking.store import configure_tracking, default_tracking_uri, ensure_experiment


@pytest.fixture
def logged(random_dataset: Dataset, tmp_path: Path, mlflow_store: str) -> tuple[str, Recommender]:
    model = ALSModel(factors=8, iterations=5, show_progress=False).fit(random_dataset)
    recommender = Recommender.from_training(model, random_dataset)
    recommender.save(tmp_path / "rec")
    configure_tracking()
    with mlflow.start_run(experiment_id=ensure_experiment("test")):
        info = log_pyfunc(recommender, tmp_path / "rec", pip_requirements=["numpy"])
    return str(info.model_uri), recommender


def test_pyfunc_answers_ranked_item_ids(logged: tuple[str, Recommender]) -> None:
    uri, recommender = logged
    model = mlflow.pyfunc.load_model(uri)
    out = model.predict(pd.DataFrame({Columns.user: ["u1", "u2"]}), params={"k": 4})
    assert list(out.columns) == [Columns.user, Columns.item, Columns.score, Columns.rank]
    assert out.groupby(Columns.user)[Columns.rank].apply(list).tolist() == [[1, 2, 3, 4]] * 2
    expected = recommender.recommend(["u1", "u2"], k=4)
    assert out[Columns.item].tolist() == expected[Columns.item].tolist()


def test_pyfunc_signature_and_example(logged: tuple[str, Recommender]) -> None:
    uri, _ = logged
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None
    assert info.signature.inputs.input_names() == [Columns.user]
    assert {p.name for p in info.signature.params.params} == {"k", "exclude_seen", "on_unknown"}
    assert info.saved_input_example_info is not None


def test_pyfunc_unknown_user(logged: tuple[str, Recommender]) -> None:
    model = mlflow.pyfunc.load_model(logged[0])
    with pytest.raises(Exception, match="unknown user id"):
        model.predict(pd.DataFrame({Columns.user: ["nobody"]}))
    out = model.predict(pd.DataFrame({Columns.user: ["nobody"]}), params={"on_unknown": "popular"})
    assert len(out) == 10


def test_default_store_is_sqlite_in_the_project(tmp_path: Path) -> None:
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_artifacts_live_next_to_a_sqlite_store(tmp_path: Path) -> None:
    from recops.tracking.store import artifact_location_for

    uri = f"sqlite:///{tmp_path / 'sub' / 'mlflow.db'}"
    assert artifact_location_for(uri) == (tmp_path / "sub" / "mlartifacts").as_uri()
    assert artifact_location_for("http://127.0.0.1:5000") is None
