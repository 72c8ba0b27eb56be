"""The MLflow pyfunc flavour of a `Recommender`.

`mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"user_id": [...]}), params={"k": 5})`
returns one row per recommendation: user_id, item_id, score, rank (1 = best).

Logged as "models from code" (`pyfunc_entry.py`, which imports the installed package): no
pickled object is stored. RecOps itself never loads this flavour; it reads the recommender's
checksum-verified files (`recops.tracking.model_files`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import PythonModel

from recops.columns import Columns
from recops.errors import RecopsError
from recops.models.recommender import Recommender
from recops.tracking.model_files import CHECKSUM_TAG, manifest_for

ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
ARTIFACT_KEY = "recommender"
DEFAULT_PARAMS: dict[str, Any] = {"k": 10, "exclude_seen": True, "on_unknown": "error"}


class RecommenderPyfunc(PythonModel):
    """Loads the saved `Recommender` once and answers batches of user ids."""

    def __init__(self) -> None:
        self.recommender: Recommender | None = None

    def load_context(self, context: Any) -> None:
        self.recommender = Recommender.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.recommender is None:
            raise RecopsError("the recommender is not loaded")
        return predict_frame(self.recommender, model_input, params)


def predict_frame(
    recommender: Recommender, model_input: pd.DataFrame, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """What the pyfunc flavour's `predict` answers (also used by the smoke gate)."""
    if Columns.user not in model_input:
        raise RecopsError(f"input needs a {Columns.user!r} column, got {list(model_input.columns)}")
    p = {**DEFAULT_PARAMS, **(params or {})}
    users = model_input[Columns.user].astype(str).tolist()
    return recommender.recommend(
        users, k=int(p["k"]), exclude_seen=bool(p["exclude_seen"]), on_unknown=p["on_unknown"]
    )


def signature_for(recommender: Recommender, example_users: list[str]) -> ModelSignature:
    """Signature and params schema from a real prediction on `example_users`."""
    inp = pd.DataFrame({Columns.user: example_users})
    out = recommender.recommend(example_users, k=int(DEFAULT_PARAMS["k"]), on_unknown="popular")
    with warnings.catch_warnings():  # `rank` is an int column by design; it is never missing
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        return infer_signature(inp, out, params=DEFAULT_PARAMS)


def log_pyfunc(recommender: Recommender, folder: Path, pip_requirements: list[str]) -> Any:
    """Log the saved recommender in `folder` as the active run's pyfunc model (models from
    code) and record its files' checksums as the run tag `recops.files_sha256` (computed from
    `folder`, the copy just written); returns MLflow's ModelInfo."""
    example = [str(u) for u in recommender.users.external_ids[:3]]
    manifest = manifest_for(folder)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(ENTRY_FILE),
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=signature_for(recommender, example),
        input_example=pd.DataFrame({Columns.user: example}),
        pip_requirements=pip_requirements,
    )
    mlflow.set_tag(CHECKSUM_TAG, manifest.to_tag())
    return info
