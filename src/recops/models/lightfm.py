"""LightFM (Kula, 2015): a hybrid factorisation model whose item (and user) representations are
sums of feature embeddings, so catalogue items with metadata but no interactions are scorable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM

from recops.errors import ConfigError
from recops.features.dataset import Dataset
from recops.models.factors import FactorModel

_STATE = "lightfm.npz"
LOSSES = ("warp", "bpr", "logistic", "warp-kos")


class LightFMModel(FactorModel):
    """LightFM behind the contract; scores are `user · item + item_bias (+ user_bias)`.

    Item features are `[identity | item metadata]`, each row normalised to sum 1: an item with
    interactions gives half its weight to its own id and half to its metadata; an item with
    metadata but *no* training interactions gets no id column at all, so its representation is
    the mean of its metadata embeddings - this is what makes cold items land next to warm items
    of the same category. Without metadata (or `use_item_features=False`) the model is pure CF.

    Optional user features (`use_user_features`) are `[identity | the metadata of the user's
    history, normalised]`, so users with few interactions borrow strength from item metadata.
    They are costly: LightFM's work per interaction grows with the non-zeros of the user row,
    i.e. every distinct feature in the history (MovieLens-small: 233 s instead of 6 s).
    Brand-new users have no row at all: they need a fallback (popularity) upstream.

    Interactions are binarised: the summed event weights only decide what counts as a positive.

    LightFM trains with Hogwild (lock-free threads), so with `num_threads > 1` two fits with the
    same `random_state` differ. `deterministic=True` (the default) trains on one thread to keep
    the contract's reproducible refits; set it to false to use `num_threads` cores.

    A saved model keeps the representations (for scoring and for cold items via
    `score_cold_items`) but not LightFM's optimiser state: `fit_partial` after `load` is
    refused - call `fit`.
    """

    model_type = "lightfm"
    supports_cold_items = True
    epochs_param = "epochs"
    erasure = "retrain"  # item and feature embeddings learned from every user's interactions
    CAPABILITIES: ClassVar[dict[str, bool]] = {
        "cold_items": True,  # via item metadata features
        "few_interaction_users": True,
        "new_users": False,  # no user row to score: use a fallback
    }

    def __init__(
        self,
        no_components: int = 64,
        loss: str = "warp",
        learning_rate: float = 0.05,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        epochs: int = 20,
        use_item_features: bool = True,
        use_user_features: bool = False,
        num_threads: int = 1,
        random_state: int | None = 42,
        deterministic: bool = True,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"model.loss must be one of {list(LOSSES)}, got {loss!r}")
        self.no_components = int(no_components)
        self.loss = loss
        self.learning_rate = float(learning_rate)
        self.item_alpha = float(item_alpha)
        self.user_alpha = float(user_alpha)
        self.max_sampled = int(max_sampled)
        self.epochs = int(epochs)
        self.use_item_features = bool(use_item_features)
        self.use_user_features = bool(use_user_features)
        self.num_threads = int(num_threads)
        self.random_state = random_state
        self.deterministic = bool(deterministic)
        self._estimator: LightFM | None = None
        self.user_biases: np.ndarray | None = None
        self.item_biases: np.ndarray | None = None
        #: Biases and embeddings of the metadata features alone (for `score_cold_items`).
        self.feature_biases: np.ndarray | None = None
        self.feature_factors: np.ndarray | None = None

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """What this model can serve without a fallback."""
        return dict(cls.CAPABILITIES)

    def build_estimator(self) -> LightFM:
        """The bare LightFM estimator with this model's hyperparameters."""
        return LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=self.random_state,
        )

    def training_threads(self) -> int:
        if self.deterministic:
            return 1
        return self.num_threads if self.num_threads > 0 else os.cpu_count() or 1

    # -- training ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        self._estimator = None
        self.item_factors = None
        self._fit_epochs(dataset, self.epochs)

    def _fit_epochs(self, dataset: Dataset, epochs: int) -> None:
        if self._estimator is None:
            if self.item_factors is not None:
                raise RuntimeError(
                    "LightFMModel loaded from disk keeps no optimiser state: "
                    "fit_partial cannot continue it, call fit() instead"
                )
            self._estimator = self.build_estimator()
        item_features, n_meta = self.item_feature_matrix(dataset)
        user_features = self.user_feature_matrix(dataset, item_features, n_meta)
        interactions = binarised(dataset.user_items).tocoo()
        self._estimator.fit_partial(
            interactions,
            user_features=user_features,
            item_features=item_features,
            epochs=epochs,
            num_threads=self.training_threads(),
        )
        self._store_representations(self._estimator, user_features, item_features, n_meta)

    def item_feature_matrix(self, dataset: Dataset) -> tuple[sp.csr_matrix, int]:
        """LightFM item features `[identity | metadata]` and the number of metadata columns."""
        meta = dataset.item_features if self.use_item_features else None
        if meta is None or meta.shape[1] == 0 or meta.nnz == 0:
            return sp.identity(dataset.n_items, dtype=np.float32, format="csr"), 0
        meta = normalised_rows(meta)
        has_meta = meta.getnnz(axis=1) > 0
        warm = dataset.item_popularity() > 0
        identity = sp.diags((warm | ~has_meta).astype(np.float32), format="csr")
        return normalised_rows(sp.hstack([identity, meta], format="csr")), meta.shape[1]

    def user_feature_matrix(
        self, dataset: Dataset, item_features: sp.csr_matrix, n_meta: int
    ) -> sp.csr_matrix:
        """`[identity | metadata of the user's history]`, or identity when disabled."""
        identity = sp.identity(dataset.n_users, dtype=np.float32, format="csr")
        if not self.use_user_features or n_meta == 0:
            return identity
        meta = item_features[:, dataset.n_items :]
        history = normalised_rows(binarised(dataset.user_items) @ meta)
        return normalised_rows(sp.hstack([identity, history], format="csr"))

    def _store_representations(
        self,
        estimator: LightFM,
        user_features: sp.csr_matrix,
        item_features: sp.csr_matrix,
        n_meta: int,
    ) -> None:
        user_biases, user_vectors = estimator.get_user_representations(user_features)
        item_biases, item_vectors = estimator.get_item_representations(item_features)
        self.user_biases = as_f32(user_biases)
        self.user_factors = as_f32(user_vectors)
        self.item_biases = as_f32(item_biases)
        self.item_factors = as_f32(item_vectors)
        first_meta = item_features.shape[0]  # metadata embeddings follow the identity block
        self.feature_biases = as_f32(estimator.item_biases[first_meta : first_meta + n_meta])
        self.feature_factors = as_f32(estimator.item_embeddings[first_meta : first_meta + n_meta])

    # -- scoring -------------------------------------------------------------------------
    def _biases(self) -> tuple[np.ndarray, np.ndarray]:
        if self.user_biases is None or self.item_biases is None:
            raise RuntimeError("LightFMModel is not fitted: call fit() or load() first")
        return self.user_biases, self.item_biases

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        user_biases, item_biases = self._biases()
        scores = super()._score_users(user_idx)
        return scores + item_biases[None, :] + user_biases[user_idx, None]

    def factor_vectors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """`[user, 1] · [item, item_bias]`: the score less the user's bias (a constant per
        user, so the ranking is the same)."""
        users, items = self._factors()
        _, item_biases = self._biases()
        ones = np.ones((len(users), 1), dtype=np.float32)
        return np.hstack([users, ones]), np.hstack([items, item_biases[:, None]])

    def score_items(self, user: int, item_idx: np.ndarray) -> np.ndarray:
        user_biases, item_biases = self._biases()
        idx = np.asarray(item_idx, dtype=np.int64)
        return super().score_items(user, idx) + item_biases[idx] + user_biases[user]

    def represent_items(self, features: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Biases and embeddings of items described only by metadata (no interactions), e.g.
        catalogue items added after training. `features` rows use the training feature columns
        (`Dataset.item_feature_names`)."""
        if self.feature_factors is None or self.feature_biases is None:
            raise RuntimeError("LightFMModel is not fitted: call fit() or load() first")
        if features.shape[1] != len(self.feature_factors):
            raise ValueError(
                f"expected {len(self.feature_factors)} feature columns (the training item "
                f"features), got {features.shape[1]}"
            )
        weights = normalised_rows(sp.csr_matrix(features, dtype=np.float32))
        return as_f32(weights @ self.feature_biases), as_f32(weights @ self.feature_factors)

    def score_cold_items(self, user_idx: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
        """Scores (users x new items) of metadata-only items, comparable with `recommend`."""
        user_idx = self._checked_users(user_idx)
        user_biases, _ = self._biases()
        users, _ = self._factors()
        biases, vectors = self.represent_items(features)
        return users[user_idx] @ vectors.T + biases[None, :] + user_biases[user_idx, None]

    def _drop_users(self, keep: np.ndarray) -> None:
        super()._drop_users(keep)
        self.user_biases = self._checked(self.user_biases)[keep]

    # -- persistence ---------------------------------------------------------------------
    def _save_state(self, folder: Path) -> None:
        super()._save_state(folder)
        user_biases, item_biases = self._biases()
        np.savez(
            folder / _STATE,
            user_biases=user_biases,
            item_biases=item_biases,
            feature_biases=self._checked(self.feature_biases),
            feature_factors=self._checked(self.feature_factors),
        )

    def _load_state(self, folder: Path) -> None:
        super()._load_state(folder)
        with np.load(folder / _STATE) as data:
            self.user_biases = data["user_biases"]
            self.item_biases = data["item_biases"]
            self.feature_biases = data["feature_biases"]
            self.feature_factors = data["feature_factors"]
        self._estimator = None

    @staticmethod
    def _checked(array: np.ndarray | None) -> np.ndarray:
        if array is None:
            raise RuntimeError("LightFMModel is not fitted: call fit() or load() first")
        return array


def binarised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 where the entry is positive (LightFM's notion of a positive interaction)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (out.data > 0).astype(np.float32)
    out.eliminate_zeros()
    return out


def normalised_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to sum to 1 (LightFM's advice for feature matrices); empty rows stay empty."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    sums = np.asarray(out.sum(axis=1), dtype=np.float32).ravel()
    sums[sums == 0] = 1.0
    out.data /= np.repeat(sums, np.diff(out.indptr))
    return out


def as_f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)
