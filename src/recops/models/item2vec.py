"""Item2vec (Barkan & Koenigstein, 2016): word2vec over users' time-ordered item sessions.

Items that occur close together in sessions get close vectors, so `similar_items` is its
natural strength; a user is the recency-weighted mean of their last items' vectors.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from gensim.models import Word2Vec

from recops.columns import Columns
from recops.features.dataset import Dataset
from recops.features.timestamps import epoch_ns
from recops.models.factors import FactorModel

log = logging.getLogger(__name__)
#: Score of items without a vector (never in a training session): below any cosine.
NO_VECTOR_SCORE = -2.0
_NS_PER_MINUTE = 60 * 1_000_000_000


class Item2VecModel(FactorModel):
    """Skip-gram with negative sampling over item sessions; all scores are cosines.

    Sessions are each user's events in time order, split where two consecutive events are more
    than `session_gap_minutes` apart; single-item sessions carry no co-occurrence and are
    dropped. Items that never occur in a session have no vector (zero) and rank below every
    item that has one. A user's vector is the mean of the unit vectors of their last
    `recent_items` items, the i-th most recent weighted `recency_decay ** i`.

    `sample` is word2vec's down-sampling of frequent tokens; it defaults to 0 (off) because
    with small catalogues it drops most of the training pairs (every item is "frequent").

    Determinism: gensim is reproducible for a fixed `seed` only on one worker thread (threads
    race for batches). `deterministic=True` (the default) therefore trains with one worker,
    which keeps the contract's reproducible refits but leaves cores idle; set it to false to
    train with `workers` threads (faster, refits differ slightly). Vocabulary order and vector
    initialisation do not depend on PYTHONHASHSEED in gensim 4.4 (seeded numpy generator).

    Without `Dataset.events` the sequences come from the matrix rows in column order, one
    session per user (logged as a warning: order and recency are then meaningless).
    """

    model_type = "item2vec"
    erasure = "retrain"  # item vectors learned from every user's sessions

    def __init__(
        self,
        vector_size: int = 64,
        window: int = 5,
        min_count: int = 1,
        negative: int = 10,
        ns_exponent: float = 0.75,
        epochs: int = 10,
        sg: int = 1,
        sample: float = 0.0,
        workers: int = 1,
        seed: int = 42,
        recent_items: int = 20,
        recency_decay: float = 0.9,
        session_gap_minutes: float = 60 * 24,
        deterministic: bool = True,
    ) -> None:
        super().__init__()
        self.vector_size = int(vector_size)
        self.window = int(window)
        self.min_count = int(min_count)
        self.negative = int(negative)
        self.ns_exponent = float(ns_exponent)
        self.epochs = int(epochs)
        self.sg = int(sg)
        self.sample = float(sample)
        self.workers = int(workers)
        self.seed = int(seed)
        self.recent_items = int(recent_items)
        self.recency_decay = float(recency_decay)
        self.session_gap_minutes = float(session_gap_minutes)
        self.deterministic = bool(deterministic)

    @property
    def requires_events(self) -> bool:
        return True

    def _fit(self, dataset: Dataset) -> None:
        events = ordered_events(training_events(dataset))
        sessions = [
            [str(i) for i in s.tolist()] for s in split_sessions(events, self.session_gap_minutes)
        ]
        unit_items = unit_rows(self._train_item_vectors(sessions, dataset.n_items))
        history = recent_history(
            events, (dataset.n_users, dataset.n_items), self.recent_items, self.recency_decay
        )
        self.item_factors = unit_items
        self.user_factors = unit_rows(np.asarray(history @ unit_items, dtype=np.float32))

    def _train_item_vectors(self, sessions: list[list[str]], n_items: int) -> np.ndarray:
        vectors = np.zeros((n_items, self.vector_size), dtype=np.float32)
        if not sessions:
            log.warning("item2vec: no session has two items; every item vector is zero")
            return vectors
        w2v = Word2Vec(
            sentences=sessions,
            vector_size=self.vector_size,
            window=self.window,
            min_count=self.min_count,
            sg=self.sg,
            negative=self.negative,
            ns_exponent=self.ns_exponent,
            sample=self.sample,
            epochs=self.epochs,
            workers=1 if self.deterministic else max(1, self.workers),
            seed=self.seed,
        )
        keys = np.asarray(w2v.wv.index_to_key, dtype=np.int64)
        vectors[keys] = w2v.wv.vectors
        return vectors

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        scores = super()._score_users(user_idx)
        scores[:, ~self._has_vector()] = NO_VECTOR_SCORE
        return scores

    def _score_similar(self, item_idx: np.ndarray) -> np.ndarray:
        scores = super()._score_similar(item_idx)
        scores[:, ~self._has_vector()] = NO_VECTOR_SCORE
        return scores

    def score_items(self, user: int, item_idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(item_idx, dtype=np.int64)
        scores = super().score_items(user, idx)
        has_vector = np.any(self._factors()[1][idx] != 0, axis=1)
        return np.where(has_vector, scores, np.float32(NO_VECTOR_SCORE))

    def _has_vector(self) -> np.ndarray:
        _, items = self._factors()
        return np.asarray(np.any(items != 0, axis=1))


def training_events(dataset: Dataset) -> pd.DataFrame:
    """`dataset.events`, or (with a warning) one pseudo-event per matrix entry, row-ordered."""
    if dataset.events is not None:
        return dataset.events
    log.warning(
        "item2vec: the dataset has no events; building sequences from the user-item matrix "
        "in column order (no time order, no sessions)"
    )
    matrix = dataset.user_items.tocsr()
    matrix.sort_indices()
    return pd.DataFrame(
        {
            Columns.user_idx: np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)),
            Columns.item_idx: matrix.indices,
            Columns.timestamp: pd.Timestamp(0),
        }
    )


def ordered_events(events: pd.DataFrame) -> pd.DataFrame:
    """user_idx, item_idx, timestamp (int ns, UTC) sorted by user then time (stable)."""
    frame = pd.DataFrame(
        {
            Columns.user_idx: events[Columns.user_idx].to_numpy(dtype=np.int64),
            Columns.item_idx: events[Columns.item_idx].to_numpy(dtype=np.int64),
            Columns.timestamp: epoch_ns(events[Columns.timestamp]),
        }
    )
    order = np.lexsort((frame[Columns.timestamp].to_numpy(), frame[Columns.user_idx].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def split_sessions(events: pd.DataFrame, gap_minutes: float) -> list[np.ndarray]:
    """Item sequences of `ordered_events`, cut at user changes and gaps > `gap_minutes`;
    sessions shorter than two items are dropped."""
    users = events[Columns.user_idx].to_numpy()
    ts = events[Columns.timestamp].to_numpy()
    cut = (np.diff(users) != 0) | (np.diff(ts) > gap_minutes * _NS_PER_MINUTE)
    sessions = np.split(events[Columns.item_idx].to_numpy(), np.flatnonzero(cut) + 1)
    return [s for s in sessions if len(s) >= 2]


def recent_history(
    events: pd.DataFrame, shape: tuple[int, int], recent_items: int, decay: float
) -> sp.csr_matrix:
    """users x items weights: the last `recent_items` events of each user, the i-th most
    recent weighted `decay ** i`, rows normalised to sum 1 (a weighted mean)."""
    users = events[Columns.user_idx].to_numpy()
    last_of_user = np.r_[np.flatnonzero(np.diff(users) != 0), len(users) - 1]
    ends = np.repeat(last_of_user, np.diff(np.r_[-1, last_of_user]))
    age = ends - np.arange(len(users))  # 0 for each user's most recent event
    keep = age < recent_items
    weights = np.power(decay, age[keep]).astype(np.float32)
    history = sp.csr_matrix(
        (weights, (users[keep], events[Columns.item_idx].to_numpy()[keep])),
        shape=shape,
    )
    sums = np.asarray(history.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ history, dtype=np.float32)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 and contiguous."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
