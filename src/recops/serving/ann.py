"""Candidate retrieval for one served model: exact scoring, or an approximate nearest-neighbour
index for big catalogues of factor/embedding models.

The index is faiss's IVF-Flat with inner product (`serve.ann`): items are assigned to `nlist`
k-means lists; a query scans the `nprobe` lists whose centroids score highest. It keeps the
item vectors uncompressed, so the scores it ranks by are exact dot products; recall is lost
only to the lists it does not probe. Chosen over HNSW after measuring build time, memory,
recall and query time on the same 100k structured factors (reports/benchmarks/ann_choice.md:
IVF-Flat built in 9 s vs 60 s for faiss HNSW and 210 s for usearch HNSW, recall@10 0.998 vs
0.85 and 0.985, fastest queries) and at 1M items (reports/benchmarks/scale_serving.md: recall
0.99 at nprobe 16 with nlist = sqrt(n)); it holds one copy of the vectors, and faiss is
maintained (hnswlib's last release is from 2023).

Candidates are re-scored with the model's own `score_items` and filtered exactly (seen items,
excluded items, allow-lists); when too few survive, the search widens, then falls back to exact.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any, Protocol

import numpy as np

from recops.errors import ConfigError
from recops.models.base import RecModel, top_k
from recops.serving.config import AnnConfig

log = logging.getLogger(__name__)
EXACT, ANN = "exact", "ann"
_EMPTY = np.zeros(0, dtype=np.int64)


class Search(Protocol):
    kind: str

    def recommend(
        self,
        user: int,
        n: int,
        exclude_seen: bool,
        blocked: np.ndarray,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to `n` item indices and scores, best first (ties: lower index)."""

    def info(self) -> dict[str, Any]: ...


class ExactSearch:
    """The model's own exact top-k (`RecModel.recommend`)."""

    kind = EXACT

    def __init__(self, model: RecModel, reason: str) -> None:
        self.model = model
        self.reason = reason

    def recommend(
        self,
        user: int,
        n: int,
        exclude_seen: bool,
        blocked: np.ndarray,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return exact_top(self.model, user, n, exclude_seen, blocked, allowed)

    def info(self) -> dict[str, Any]:
        return {"search": EXACT, "reason": self.reason}


def exact_top(
    model: RecModel,
    user: int,
    n: int,
    exclude_seen: bool,
    blocked: np.ndarray,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's exact top-`n` for one user, without the -1 padding."""
    ids, scores = model.recommend(
        np.array([user]), n, exclude_seen=exclude_seen, filter_items=blocked, allowed_items=allowed
    )
    valid = ids[0] >= 0
    return ids[0][valid], scores[0][valid]


def build_search(model: RecModel, cfg: AnnConfig) -> ExactSearch | AnnSearch:
    """The search for `model`: ANN when enabled, big enough and a dot-product model."""
    if not cfg.enabled:
        return ExactSearch(model, "serve.ann.enabled is false")
    if model.n_items < cfg.min_items:
        return ExactSearch(
            model, f"{model.n_items} items, below serve.ann.min_items={cfg.min_items}"
        )
    vectors = model.factor_vectors()
    if vectors is None:
        return ExactSearch(model, f"{model.model_type} has no factor vectors to index")
    return AnnSearch.build(model, vectors, cfg)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # a dependency of recops; only a broken install lacks it
        raise ConfigError(
            f"serve.ann.enabled needs the faiss-cpu package ({exc}); install it or set "
            "serve.ann.enabled=false"
        ) from exc
    return faiss


def _members(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Boolean mask: which `values` are in `sorted_set` (sorted, unique)."""
    if sorted_set.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values


class AnnSearch:
    """faiss IVF-Flat (inner product) over `factor_vectors`, exact re-scoring and filters."""

    kind = ANN

    def __init__(
        self, model: RecModel, users: np.ndarray, index: Any, cfg: AnnConfig, stats: dict[str, Any]
    ) -> None:
        self.model = model
        self.users = users
        self.index = index
        self.cfg = cfg
        self.stats = stats
        self.nlist = int(stats["nlist"])
        self._counts = {"queries": 0, "widened": 0, "exact_fallbacks": 0, "exact_allow_list": 0}
        self._lock = threading.Lock()
        self._quantizer: Any = None

    @classmethod
    def build(
        cls, model: RecModel, vectors: tuple[np.ndarray, np.ndarray], cfg: AnnConfig
    ) -> AnnSearch:
        faiss = _faiss()
        started = time.perf_counter()
        users = np.ascontiguousarray(vectors[0], dtype=np.float32)
        items = np.ascontiguousarray(vectors[1], dtype=np.float32)
        n, dim = items.shape
        nlist = min(cfg.nlist or max(1, round(math.sqrt(n))), n)
        faiss.omp_set_num_threads(cfg.threads or os.cpu_count() or 1)
        try:
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = min(n, nlist * cfg.train_per_list)
            train = items if sample == n else items[np.sort(rng.choice(n, sample, replace=False))]
            index.train(train)
            index.add(items)
        finally:
            faiss.omp_set_num_threads(1)  # one query = one thread (the server runs many)
        index.nprobe = min(cfg.nprobe, nlist)
        stats = {
            "library": f"faiss-cpu {faiss.__version__}",
            "index": "IVF-Flat, inner product",
            "n_items": n,
            "dim": dim,
            "nlist": nlist,
            "nprobe": index.nprobe,
            "trained_on": int(sample),
            "index_mb": round((n * (dim * 4 + 8) + nlist * dim * 4) / 2**20, 1),
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        log.info("built ANN index: %s", stats)
        search = cls(model, users, index, cfg, stats)
        search._quantizer = quantizer  # faiss keeps a raw pointer: keep the object alive
        return search

    def info(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        return {
            "search": ANN,
            **self.stats,
            "candidates": self.cfg.candidates,
            "max_rounds": self.cfg.max_rounds,
            "min_items": self.cfg.min_items,
            **counts,
        }

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _removed(self, user: int, exclude_seen: bool, blocked: np.ndarray) -> np.ndarray:
        if not exclude_seen:
            return np.unique(blocked) if blocked.size else _EMPTY
        seen = self.model.seen
        history = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        return np.unique(np.concatenate([history.astype(np.int64), blocked.astype(np.int64)]))

    def recommend(
        self,
        user: int,
        n: int,
        exclude_seen: bool,
        blocked: np.ndarray,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._count("queries")
        removed = self._removed(user, exclude_seen, blocked)
        if allowed is not None and allowed.size < self.cfg.min_items:
            self._count("exact_allow_list")
            return self._exact_subset(user, n, removed, np.unique(allowed))
        total = self.model.n_items
        want = n + self.cfg.candidates + removed.size
        if allowed is not None:
            allowed = np.unique(allowed)
            want = math.ceil(want * total / max(allowed.size, 1))
        nprobe = int(self.index.nprobe)
        query = self.users[user : user + 1]
        faiss = _faiss()
        faiss.omp_set_num_threads(1)  # per thread in OpenMP: a request thread, one query
        for round_ in range(self.cfg.max_rounds):
            if round_:
                self._count("widened")
            count = min(want, total)
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, found = self.index.search(query, count, params=params)
            cand = found[0][found[0] >= 0].astype(np.int64)
            keep = ~_members(cand, removed)
            if allowed is not None:
                keep &= _members(cand, allowed)
            cand = cand[keep]
            if cand.size >= n:
                scores = self.model.score_items(user, cand)
                order = np.lexsort((cand, -scores))[:n]
                return cand[order], scores[order].astype(np.float32)
            if count >= total and nprobe >= self.nlist:
                break  # everything was scanned: there are no more items to find
            want, nprobe = want * 4, min(nprobe * 2, self.nlist)
        self._count("exact_fallbacks")
        return exact_top(self.model, user, n, exclude_seen, blocked, allowed)

    def _exact_subset(
        self, user: int, n: int, removed: np.ndarray, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-n among a (small) allow-list: score only those items."""
        scores = self.model.score_items(user, allowed).astype(np.float32)
        scores[_members(allowed, removed)] = -np.inf
        ids, vals = top_k(scores[None, :], n)
        valid = ids[0] >= 0
        return allowed[ids[0][valid]], vals[0][valid]
