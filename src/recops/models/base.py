"""The one model contract: fit / recommend / similar_items / save / load / get_config.

Models work in index space (rows and columns of `Dataset.user_items`); `Recommender` maps
external ids. Subclasses implement scoring; the base class owns exclude-seen, item filters,
chunking and top-k so every model behaves the same way.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recops.errors import ConfigError, UnknownIdError
from recops.features.dataset import Dataset
from recops.models.topk import (
    _top_k_mask,
    chunked_top_k,
    mask_seen,
    shared_ranking_top_k,
    top_k,
)

_mask_rows = mask_seen  # the name older callers and tests use
__all__ = ["RecModel", "_mask_rows", "_top_k_mask", "blocked_mask", "load_model", "top_k"]

_META = "model.json"
_SEEN = "seen.npz"


class RecModel(ABC):
    """Base class of every model. Constructor kwargs are its hyperparameters."""

    model_type: ClassVar[str]
    #: Whether the model can score items that had no training interactions (via features).
    supports_cold_items: ClassVar[bool] = False
    #: False for models that give everyone the same ranking (the popularity baseline).
    personalized: ClassVar[bool] = True
    #: The hyperparameter counting training epochs for models trained incrementally
    #: (`fit_partial`; Optuna prunes them between epochs). None for one-shot models.
    epochs_param: ClassVar[str | None] = None
    #: How a user's data leaves the fitted model (`recops gdpr delete-user`): "redact" - the
    #: user's own parameters are rows (seen items, factors) and dropping them leaves a model
    #: that serves everyone else unchanged; "retrain" - shared item-item parameters were learned
    #: from the user's interactions, so dropping the rows is not enough: a retrain is scheduled.
    erasure: ClassVar[str] = "retrain"
    #: Whether `fold_in` can add new users (and items) to a fitted model's fixed item factors
    #: without a full retrain (the worker's fast path between full retrains).
    supports_fold_in: ClassVar[bool] = False

    def __init__(self) -> None:
        self._seen: sp.csr_matrix | None = None

    @property
    def requires_events(self) -> bool:
        """Whether `fit` reads `Dataset.events` (order/recency) and not only the matrix."""
        return False

    # -- optional capabilities (serving: ANN retrieval, MMR, explanations, intervals) ----------
    #: `explain` cites the history items behind a recommendation.
    supports_explain: ClassVar[bool] = False
    #: `score_intervals` gives each recommended item's score an interval.
    supports_uncertainty: ClassVar[bool] = False

    def factor_vectors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """User and item vectors whose dot products rank items exactly as `recommend` does
        (for approximate nearest-neighbour retrieval); None: not a dot-product model."""
        return None

    def score_items(self, user: int, item_idx: np.ndarray) -> np.ndarray:
        """Exact scores of `item_idx` for one user (what `recommend` ranks by)."""
        scores = np.asarray(self._score_users(np.array([user])), dtype=np.float32)
        return scores[0, np.asarray(item_idx, dtype=np.int64)]

    def item_similarity(self, item_idx: np.ndarray) -> np.ndarray:
        """Pairwise similarity of `item_idx` (len x len), as `similar_items` measures it."""
        idx = np.asarray(item_idx, dtype=np.int64)
        return np.asarray(self._score_similar(idx), dtype=np.float32)[:, idx]

    def explain(self, user: int, item_idx: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
        """Per item of `item_idx`, up to `n` (history item, contribution), largest first."""
        raise NotImplementedError(f"{self.model_type} models do not explain recommendations")

    def score_intervals(
        self, user: int, item_idx: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper ends of a `level` (e.g. 0.9) interval around each item's score."""
        raise NotImplementedError(f"{self.model_type} models give no score intervals")

    # -- what subclasses implement -------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters such that `type(self)(**get_params())` is an equivalent model.

        Read back from the constructor's signature (scikit-learn's convention): every
        `__init__` argument must be stored unchanged in an attribute of the same name.
        """
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {name: getattr(self, name) for name in names}

    @abstractmethod
    def _fit(self, dataset: Dataset) -> None: ...

    @abstractmethod
    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores (len(user_idx) x n_items); higher is better.

        A new array the caller may write into (masking seen items in place), or a read-only
        view (popularity's one ranking broadcast): never the model's own writable state."""

    @abstractmethod
    def _score_similar(self, item_idx: np.ndarray) -> np.ndarray:
        """Dense item-item scores (len(item_idx) x n_items)."""

    @abstractmethod
    def _save_state(self, folder: Path) -> None: ...

    @abstractmethod
    def _load_state(self, folder: Path) -> None: ...

    # -- the contract ----------------------------------------------------------------------
    def fit(self, dataset: Dataset) -> Self:
        """Train on `dataset.user_items`; remembers what each user has seen."""
        self._seen = dataset.user_items.tocsr().astype(np.float32)
        self._fit(dataset)
        return self

    def fit_partial(self, dataset: Dataset, epochs: int) -> Self:
        """Train `epochs` more epochs, continuing from the current state (iterative models).

        On a fresh model this starts training; `fit` starts over with all configured epochs.
        """
        if self.epochs_param is None:
            raise NotImplementedError(f"{type(self).__name__} is not trained incrementally")
        self._seen = dataset.user_items.tocsr().astype(np.float32)
        self._fit_epochs(dataset, int(epochs))
        return self

    def fold_in(self, dataset: Dataset, item_factors: np.ndarray, known: np.ndarray) -> Self:
        """Fit `dataset`'s users against fixed `item_factors` (one row per item; rows where
        `known` is False are solved). Only for models with `supports_fold_in`."""
        raise NotImplementedError(f"{type(self).__name__} does not support fold-in")

    def _fit_epochs(self, dataset: Dataset, epochs: int) -> None:
        """Continue training for `epochs` epochs (override in iterative models)."""
        raise NotImplementedError

    @property
    def seen(self) -> sp.csr_matrix:
        """Training interactions, users x items (what `exclude_seen` removes)."""
        return self._fitted_seen()

    @property
    def n_users(self) -> int:
        return self._fitted_seen().shape[0]

    @property
    def n_items(self) -> int:
        return self._fitted_seen().shape[1]

    def recommend(
        self,
        user_idx: np.ndarray,
        k: int,
        exclude_seen: bool = True,
        filter_items: np.ndarray | None = None,
        allowed_items: np.ndarray | None = None,
        threads: int = 1,
        on_chunk: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user, -1 / NaN padded.

        `filter_items` are never recommended; if `allowed_items` is given only those are.
        Users are scored in chunks on `threads` threads (0: every core); `on_chunk(n)` reports
        each chunk of n users done. The result does not depend on `threads`.
        """
        user_idx = self._checked_users(user_idx)
        k = _checked_k(k)
        blocked = self._blocked_items(filter_items, allowed_items)
        if not self.personalized:  # one ranking for everyone: no users x items pass
            ranking = np.asarray(self._score_users(user_idx[:1]), dtype=np.float32)[0].copy()
            if blocked is not None:
                ranking[blocked] = -np.inf
            seen = self._fitted_seen() if exclude_seen else None
            ids, scores = shared_ranking_top_k(ranking, user_idx, seen, k)
            if on_chunk is not None:
                on_chunk(len(user_idx))
            return ids, scores

        def score_chunk(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            s = _writable_float32(self._score_users(chunk))
            if blocked is not None:
                s[:, blocked] = -np.inf
            if exclude_seen:
                mask_seen(s, self._fitted_seen(), chunk)
            return top_k(s, k)

        return chunked_top_k(user_idx, k, self.n_items, score_chunk, threads, on_chunk)

    def similar_items(
        self, item_idx: np.ndarray, k: int, filter_items: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k most similar items per query item (the item itself excluded)."""
        item_idx = np.asarray(item_idx, dtype=np.int64)
        bad = item_idx[(item_idx < 0) | (item_idx >= self.n_items)]
        if len(bad):
            raise UnknownIdError(
                f"item index {bad[:5].tolist()} out of range 0..{self.n_items - 1}"
            )
        k = _checked_k(k)
        s = np.asarray(self._score_similar(item_idx), dtype=np.float32).copy()
        s[np.arange(len(item_idx)), item_idx] = -np.inf
        if filter_items is not None and len(filter_items):
            s[:, np.asarray(filter_items, dtype=np.int64)] = -np.inf
        return top_k(s, k)

    def get_config(self) -> dict[str, Any]:
        """The Hydra config (`_target_` + params) that rebuilds an unfitted twin of this model."""
        cls = type(self)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **self.get_params()}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": self.model_type, "config": self.get_config()}
        (folder / _META).write_text(json.dumps(meta, indent=2, default=str))
        sp.save_npz(folder / _SEEN, self._fitted_seen(), compressed=False)
        self._save_state(folder)

    @classmethod
    def load(cls, folder: Path) -> RecModel:
        return load_model(folder)

    def without_users(self, keep: np.ndarray) -> Self:
        """A copy serving only the users `keep` (indices in this model, new index order); the
        rows of everyone else are gone (see `erasure` for what shared parameters keep)."""
        clone = copy.copy(self)
        clone._seen = self._fitted_seen()[np.asarray(keep, dtype=np.int64)].tocsr()
        clone._drop_users(np.asarray(keep, dtype=np.int64))
        return clone

    def _drop_users(self, keep: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Slice per-user state other than `seen` (override in models that have some)."""

    # -- helpers ---------------------------------------------------------------------------
    def _fitted_seen(self) -> sp.csr_matrix:
        if self._seen is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self._seen

    def _checked_users(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        bad = user_idx[(user_idx < 0) | (user_idx >= self.n_users)]
        if len(bad):
            raise UnknownIdError(
                f"user index {bad[:5].tolist()} out of range 0..{self.n_users - 1}"
            )
        return user_idx

    def _blocked_items(
        self, filter_items: np.ndarray | None, allowed_items: np.ndarray | None
    ) -> np.ndarray | None:
        blocked = blocked_mask(self.n_items, filter_items, allowed_items)
        return blocked if blocked.any() else None


def blocked_mask(
    n_items: int, blocked: np.ndarray | None, allowed: np.ndarray | None
) -> np.ndarray:
    """Boolean mask of items that must not be recommended: `blocked` ones, and all but
    `allowed` when an allow-list is given."""
    mask = np.zeros(n_items, dtype=bool)
    if blocked is not None and len(blocked):
        mask[np.asarray(blocked, dtype=np.int64)] = True
    if allowed is not None:
        keep = np.zeros(n_items, dtype=bool)
        keep[np.asarray(allowed, dtype=np.int64)] = True
        mask |= ~keep
    return mask


def _checked_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def model_class(target: str) -> type[RecModel]:
    """Import the model class named by a `_target_` string."""
    module_name, _, class_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model _target_ {target!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, RecModel)):
        raise ConfigError(f"model _target_ {target!r} is not a recops RecModel")
    return cls


def load_model(folder: Path) -> RecModel:
    """Load any saved model; the class comes from the saved config (no per-model branches)."""
    meta_path = folder / _META
    if not meta_path.exists():
        raise FileNotFoundError(f"{folder} is not a saved recops model (no {_META})")
    config = dict(json.loads(meta_path.read_text())["config"])
    cls = model_class(config.pop("_target_"))
    model = cls(**config)
    model._seen = sp.load_npz(folder / _SEEN).tocsr()
    model._load_state(folder)
    return model


def _writable_float32(scores: np.ndarray) -> np.ndarray:
    """float32 scores to mask in place: a fresh array as it is (no copy of a 100k-column
    block per chunk), a read-only view copied (see `RecModel._score_users`)."""
    out = np.asarray(scores, dtype=np.float32)
    return out if out.flags.writeable else out.copy()
