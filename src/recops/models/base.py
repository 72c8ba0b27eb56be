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
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recops.errors import ConfigError, UnknownIdError
from recops.features.dataset import Dataset

_META = "model.json"
_SEEN = "seen.npz"
SCORE_CHUNK = 1024


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
        """Dense scores (len(user_idx) x n_items); higher is better."""

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
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user, -1 / NaN padded.

        `filter_items` are never recommended; if `allowed_items` is given only those are.
        """
        user_idx = self._checked_users(user_idx)
        k = _checked_k(k)
        blocked = self._blocked_items(filter_items, allowed_items)
        ids = np.full((len(user_idx), k), -1, dtype=np.int64)
        scores = np.full((len(user_idx), k), np.nan, dtype=np.float32)
        for start in range(0, len(user_idx), SCORE_CHUNK):
            chunk = user_idx[start : start + SCORE_CHUNK]
            s = np.asarray(self._score_users(chunk), dtype=np.float32).copy()
            if blocked is not None:
                s[:, blocked] = -np.inf
            if exclude_seen:
                _mask_rows(s, self._fitted_seen(), chunk)
            ids[start : start + len(chunk)], scores[start : start + len(chunk)] = top_k(s, k)
        return ids, scores

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


def _mask_rows(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray | None = None) -> None:
    """Set scores of seen (row, item) pairs to -inf, in place; row r of `scores` is user
    `users[r]` of `seen` (default: row r). Gathers the rows' index ranges directly instead of
    slicing the CSR (which costs more than the scoring itself for one user)."""
    if users is None:
        users = np.arange(seen.shape[0])
    starts = seen.indptr[users].astype(np.int64)
    lengths = seen.indptr[users + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    rows = np.repeat(np.arange(len(users)), lengths)
    scores[rows, seen.indices[np.arange(total) + offsets]] = -np.inf


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k, descending, ties broken by lower item index (so results are exact and
    deterministic); -inf entries become -1 / NaN padding."""
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if n_rows == 1 and kk < n_cols:  # one user (serving): plain indexing, same result
        single = _top_k_row(scores[0], kk, k)
        if single is not None:
            return single
    part = _top_k_candidates(scores, kk)
    if part is None:  # a tie straddles the k-th place: keep the lowest indices among ties
        chosen = _top_k_mask(scores, kk)
        part = np.nonzero(chosen)[1].reshape(n_rows, kk)  # row-major: kk columns per row
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    invalid = ~np.isfinite(vals)
    ids[invalid] = -1
    vals[invalid] = np.nan
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=np.nan)
    return ids, vals


def _top_k_row(row: np.ndarray, kk: int, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """`top_k` of a single row, or None when a tie straddles the k-th place."""
    part = np.argpartition(-row, kk - 1)[:kk]
    vals = row[part]
    if np.count_nonzero(row >= vals.min()) != kk:
        return None
    order = np.lexsort((part, -vals))
    ids = part[order].astype(np.int64)
    vals = vals[order].astype(np.float32)
    invalid = ~np.isfinite(vals)
    ids[invalid] = -1
    vals[invalid] = np.nan
    if kk < k:
        ids = np.pad(ids, (0, k - kk), constant_values=-1)
        vals = np.pad(vals, (0, k - kk), constant_values=np.nan)
    return ids[None, :], vals[None, :]


def _top_k_candidates(scores: np.ndarray, k: int) -> np.ndarray | None:
    """The k best columns per row (unordered) when that set is unambiguous - no value equal to
    a row's k-th best is left out - else None. The usual case, and much cheaper than a mask."""
    if k >= scores.shape[1]:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    if (np.count_nonzero(scores >= kth, axis=1) == k).all():
        return part
    return None


def _top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask with exactly k entries per row: everything above the k-th largest value,
    then the lowest-index entries equal to it."""
    if k == scores.shape[1]:
        return np.ones(scores.shape, dtype=bool)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    need = k - above.sum(axis=1, keepdims=True)
    tied = scores == kth
    return above | (tied & (np.cumsum(tied, axis=1) <= need))


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
