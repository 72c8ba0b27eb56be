"""One loaded model version, ready to answer: id lookups, item records, signals, content index,
precomputed table and answer cache, all built once at load time (off the request path)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recops.columns import Columns
from recops.models.base import blocked_mask
from recops.models.recommender import Recommender
from recops.serving import erasure
from recops.serving.ann import build_search
from recops.serving.cache import TTLCache
from recops.serving.config import ServeConfig
from recops.serving.content import ContentIndex
from recops.serving.errors import BadRequestError, UnknownItemError
from recops.serving.precompute import Precomputed
from recops.serving.refs import ModelRef
from recops.serving.rerank import mmr
from recops.serving.scoring import ItemSignals, fallback_rank, rerank

log = logging.getLogger(__name__)
MODEL, FALLBACK = "model", "fallback"
#: Users sampled to measure the model's score range at load time.
SCORE_SAMPLE = 256


@dataclass(frozen=True)
class Query:
    """A normalised /recommend request (hashable: it is the cache key)."""

    user_id: str
    k: int
    exclude_seen: bool = True
    categories: tuple[str, ...] = ()
    exclude_item_ids: tuple[str, ...] = ()
    rerank: bool = False
    recent_item_ids: tuple[str, ...] = ()
    diversity: float = 0.0  # MMR strength, 0 = off
    explain: bool = False
    uncertainty: bool = False

    @property
    def is_default(self) -> bool:
        """The request a precomputed table answers (intervals: if the table has them)."""
        return (
            self.exclude_seen
            and not self.categories
            and not self.exclude_item_ids
            and not self.rerank
            and not self.recent_item_ids
            and not self.diversity
            and not self.explain
        )


@dataclass(frozen=True)
class Answer:
    """Recommended item indices and scores, with the items already rendered as a JSON array
    (what the HTTP answer carries; a cached answer is served without any formatting)."""

    ids: np.ndarray
    scores: np.ndarray
    items_json: str
    source: str  # model | fallback
    reranked: bool = False
    precomputed: bool = False
    records: Sequence[dict[str, Any]] = field(default=(), repr=False, compare=False)
    #: per item: explanation / interval members (same order as `ids`); empty: none asked
    extras: Sequence[dict[str, Any]] = field(default=(), repr=False, compare=False)
    diversity: float = 0.0

    @property
    def items(self) -> list[dict[str, Any]]:
        """The items as dicts (item metadata, score, rank, and any extras)."""
        return item_dicts(self.records, self.ids, self.scores, self.extras)


def item_dicts(
    records: Sequence[dict[str, Any]],
    ids: np.ndarray,
    scores: np.ndarray,
    extras: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Ranked items as dicts: each item's metadata record with its score and rank (from 1), and
    the item's extras (explanation, score interval) when there are any."""
    extras = extras or [{}] * len(ids)
    return [
        {**records[i], "score": float(s), "rank": r, **extra}
        for r, (i, s, extra) in enumerate(
            zip(ids.tolist(), scores.tolist(), extras, strict=True), 1
        )
    ]


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready metadata of one item (NaN/None become null, tags a list)."""
    price = row.get(Columns.price)
    tags = row.get(Columns.tags)
    return {
        "item_id": str(row[Columns.item]),
        "title": row.get(Columns.title) if isinstance(row.get(Columns.title), str) else None,
        "category": row.get(Columns.category)
        if isinstance(row.get(Columns.category), str)
        else None,
        "brand": row.get(Columns.brand) if isinstance(row.get(Columns.brand), str) else None,
        "price": float(price) if isinstance(price, int | float) and math.isfinite(price) else None,
        "tags": [t for t in tags.split("|") if t] if isinstance(tags, str) else [],
    }


@dataclass(eq=False)  # compared by identity (the loader swaps whole objects)
class ServedModel:
    ref: ModelRef
    recommender: Recommender
    cfg: ServeConfig
    precomputed: Precomputed | None = None
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        started = time.perf_counter()
        rec = self.recommender
        self.model = rec.model
        self.seen = rec.model.seen
        self.history_len = np.diff(self.seen.indptr)
        self.user_index: dict[str, int] = {
            str(u): i for i, u in enumerate(rec.users.external_ids.tolist())
        }
        self.item_index: dict[str, int] = {
            str(u): i for i, u in enumerate(rec.items.external_ids.tolist())
        }
        self.records = [
            _record({str(k): v for k, v in row.items()}) for row in rec.item_meta.to_dict("records")
        ]
        # each item's metadata as JSON members, rendered once: '"item_id":"i1",...,"tags":[..]'
        self.fragments = [json.dumps(r, separators=(",", ":"))[1:-1] for r in self.records]
        categories: dict[str, list[int]] = {}
        for i, record in enumerate(self.records):
            if record["category"] is not None:
                categories.setdefault(record["category"], []).append(i)
        self.category_items = {c: np.asarray(v, dtype=np.int64) for c, v in categories.items()}
        self.signals = ItemSignals.build(rec, self.cfg.rerank.recency_half_life_days)
        self.content = ContentIndex.build(
            rec.item_meta, rec.model, self.cfg.fallback.embedding_weight
        )
        self.cache: TTLCache[Query, Answer] = TTLCache(self.cfg.cache.size, self.cfg.cache.ttl_s)
        self.search = build_search(self.model, self.cfg.ann)
        self.score_range = self._score_range()
        self.build_seconds = time.perf_counter() - started

    # -- lookups ---------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.records)

    def model_user(self, user_id: str) -> int:
        """The user's index if the model serves them (known, >= min_history), else -1."""
        idx = self.user_index.get(user_id, -1)
        if idx >= 0 and self.history_len[idx] >= self.cfg.min_history:
            return idx
        return -1

    def _items(self, ids: Sequence[str]) -> np.ndarray:
        found = [self.item_index[i] for i in ids if i in self.item_index]
        return np.asarray(found, dtype=np.int64)

    def _allowed(self, categories: Sequence[str]) -> np.ndarray | None:
        if not categories:
            return None
        parts = [self.category_items.get(c, np.zeros(0, np.int64)) for c in categories]
        return np.unique(np.concatenate(parts)) if parts else None

    def history(self, user_idx: int) -> np.ndarray:
        return self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]

    # -- answers ---------------------------------------------------------------------------
    def answer(self, q: Query) -> Answer:
        """Recommendations for `q` (not cached here; see `Engine`)."""
        self._check_capabilities(q)
        if erasure.is_erased(q.user_id):  # GDPR erasure: answered as an unknown user
            return self._fallback(replace(q, user_id=""))
        user = self.model_user(q.user_id)
        if user >= 0:
            return self._from_model(user, q)
        return self._fallback(q)

    def _check_capabilities(self, q: Query) -> None:
        model = self.model
        for asked, supported, what in (
            (q.explain, model.supports_explain, "explain"),
            (q.uncertainty, model.supports_uncertainty, "uncertainty"),
        ):
            if asked and not supported:
                raise BadRequestError(
                    f"{what}: true is not supported by the served model "
                    f"({self.recommender.model_type}, {self.ref.model_name} v{self.ref.version})"
                )

    def _from_model(self, user: int, q: Query) -> Answer:
        if q.is_default and self.precomputed is not None:
            hit = self.precomputed.get(q.user_id, q.k)
            bounds = self.precomputed.intervals_of(q.user_id, q.k) if q.uncertainty else None
            if hit is not None and (bounds is not None or not q.uncertainty):
                extras = _interval_extras(*bounds) if bounds is not None else ()
                return self._answer(*hit, MODEL, precomputed=True, extras=extras)
        blocked = self._items(q.exclude_item_ids)
        if q.exclude_seen and q.recent_item_ids:
            blocked = np.concatenate([blocked, self._items(q.recent_item_ids)])
        allowed = self._allowed(q.categories)
        if allowed is not None and allowed.size == 0:
            return self._answer(np.zeros(0, np.int64), np.zeros(0, np.float32), MODEL)
        wide = q.rerank or q.diversity > 0
        n = max(q.k, self.cfg.rerank.candidates) if wide else q.k
        ids, scores = self.search.recommend(user, n, q.exclude_seen, blocked, allowed)
        if q.rerank:
            seeds = self.history(user)[-self.cfg.fallback.max_seed_items :]
            content = self.content.profile_scores(seeds) if seeds.size else None
            k = len(ids) if q.diversity > 0 else q.k
            ids, scores = rerank(ids, scores, content, self.signals, self.cfg.rerank.weights, k)
        if q.diversity > 0:
            picked = mmr(ids, scores, self._similarity(ids), q.diversity, q.k)
            ids, scores = ids[picked], scores[picked]
        return self._answer(
            ids,
            scores,
            MODEL,
            reranked=q.rerank,
            extras=self._extras(user, ids, q),
            diversity=q.diversity,
        )

    def _similarity(self, ids: np.ndarray) -> np.ndarray:
        """Pairwise similarity of candidates for MMR (`serve.rerank.diversity_similarity`)."""
        if self.cfg.rerank.diversity_similarity == "model" and self.model.personalized:
            return self.model.item_similarity(ids)
        features = self.content.features[ids]
        return np.asarray((features @ features.T).toarray(), dtype=np.float32)

    def _extras(self, user: int, ids: np.ndarray, q: Query) -> list[dict[str, Any]]:
        """Per item: `because` (explain) and `score_low`/`score_high` (uncertainty)."""
        if not (q.explain or q.uncertainty) or ids.size == 0:
            return []
        extras: list[dict[str, Any]] = [{} for _ in range(len(ids))]
        if q.explain:
            external = self.recommender.items.external_ids
            cited = self.model.explain(user, ids, self.cfg.explain.max_items)
            for extra, pairs in zip(extras, cited, strict=True):
                extra["because"] = [
                    {"item_id": str(external[j]), "weight": round(w, 6)} for j, w in pairs
                ]
        if q.uncertainty:
            low, high = self.model.score_intervals(user, ids, self.cfg.uncertainty.level)
            for extra, interval in zip(extras, _interval_extras(low, high), strict=True):
                extra.update(interval)
        return extras

    def _fallback(self, q: Query) -> Answer:
        known = self.user_index.get(q.user_id, -1)
        touched = self.history(known) if known >= 0 else np.zeros(0, np.int64)
        if q.recent_item_ids:
            touched = np.concatenate([touched, self._items(q.recent_item_ids)])
        seeds = touched[-self.cfg.fallback.max_seed_items :]
        blocked = self._items(q.exclude_item_ids)
        if q.exclude_seen and touched.size:
            blocked = np.concatenate([blocked, touched])
        allowed = self._allowed(q.categories)
        mask = None
        if blocked.size or allowed is not None:
            mask = blocked_mask(self.n_items, blocked, allowed)
        ids, scores = fallback_rank(self.signals, self.content, seeds, mask, q.k, self.cfg.fallback)
        if q.diversity > 0 and ids.size:
            picked = mmr(ids, scores, self._similarity(ids), q.diversity, q.k)
            ids, scores = ids[picked], scores[picked]
        # the fallback is not the model: no explanations or model intervals (null members)
        empty = {"because": None} if q.explain else {}
        if q.uncertainty:
            empty = {**empty, "score_low": None, "score_high": None}
        extras = [empty] * len(ids) if empty else []
        return self._answer(ids, scores, FALLBACK, extras=extras, diversity=q.diversity)

    def similar(self, item_id: str, k: int) -> list[dict[str, Any]]:
        idx = self.item_index.get(item_id)
        if idx is None:
            raise UnknownItemError(
                f"unknown item id {item_id!r}: not in the catalogue of {self.ref.model_name} "
                f"v{self.ref.version} ({self.n_items} items)"
            )
        ids, scores = self.model.similar_items(np.array([idx]), k)
        valid = ids[0] >= 0
        return self.format(ids[0][valid], scores[0][valid])

    def format(self, ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        return item_dicts(self.records, ids, scores)

    def _answer(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        source: str,
        reranked: bool = False,
        precomputed: bool = False,
        extras: Sequence[dict[str, Any]] = (),
        diversity: float = 0.0,
    ) -> Answer:
        """An answer with its items rendered from the pre-rendered item JSON (the scores of
        valid items are finite; `repr` of a float is valid JSON)."""
        frags = self.fragments
        tails = [
            "," + json.dumps(extra, separators=(",", ":"))[1:-1] if extra else ""
            for extra in extras
        ] or [""] * len(ids)
        body = ",".join(
            [
                f'{{{frags[i]},"score":{s!r},"rank":{r}{tail}}}'
                for r, (i, s, tail) in enumerate(
                    zip(ids.tolist(), scores.tolist(), tails, strict=True), 1
                )
            ]
        )
        return Answer(
            ids,
            scores,
            f"[{body}]",
            source,
            reranked,
            precomputed,
            self.records,
            tuple(extras),
            diversity,
        )

    # -- load-time work --------------------------------------------------------------------
    def most_active_users(self, n: int) -> list[str]:
        if n <= 0:
            return []
        order = np.argsort(-self.history_len, kind="stable")[:n]
        ids = self.recommender.users.external_ids
        return [str(ids[i]) for i in order if self.history_len[i] >= self.cfg.min_history]

    def default_query(self, user_id: str) -> Query:
        rr = self.cfg.rerank
        return Query(
            user_id,
            self.cfg.limits.k_default,
            rerank=rr.enabled and rr.default,
            diversity=rr.diversity if rr.enabled else 0.0,
        )

    def warm(self) -> int:
        """Fill the cache with the default answer for the most active users."""
        if not self.cache.enabled:
            return 0
        users = self.most_active_users(min(self.cfg.cache.warm_users, self.cfg.cache.size))
        for user in users:
            q = self.default_query(user)
            self.cache.put(q, self.answer(q))
        return len(users)

    def _score_range(self) -> dict[str, float | int | None]:
        users = np.flatnonzero(self.history_len >= self.cfg.min_history)
        if users.size == 0:
            return {"min": None, "max": None, "users_sampled": 0}
        sample = users[np.linspace(0, users.size - 1, min(SCORE_SAMPLE, users.size)).astype(int)]
        k, none = self.cfg.limits.k_default, np.zeros(0, np.int64)
        # one user at a time through the search in use (a batch of exact scores of a
        # 1M-item catalogue would need gigabytes)
        scores = np.concatenate(
            [self.search.recommend(int(u), k, True, none, None)[1] for u in sample]
        )
        finite = scores[np.isfinite(scores)]
        return {
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "users_sampled": int(sample.size),
            "k": self.cfg.limits.k_default,
        }

    def info(self) -> dict[str, Any]:
        rec = self.recommender
        return {
            **self.ref.to_dict(),
            "model_type": rec.model_type,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "model_users": int((self.history_len >= self.cfg.min_history).sum()),
            "loaded_at": self.loaded_at,
            "load_build_seconds": round(self.build_seconds, 3),
            "score_range": self.score_range,
            "popularity_window": self.signals.window,
            "content_similarity": self.content.kind,
            "search": self.search.info(),
            "capabilities": {
                "explain": self.model.supports_explain,
                "uncertainty": self.model.supports_uncertainty,
                "diversity": True,
            },
            "precomputed": self.precomputed.info() if self.precomputed else None,
            "trained_until": (
                datetime.fromtimestamp(rec.activity.until, UTC).isoformat(timespec="seconds")
                if rec.activity is not None
                else None
            ),
        }


def _interval_extras(low: np.ndarray, high: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"score_low": float(lo), "score_high": float(hi)}
        for lo, hi in zip(low.tolist(), high.tolist(), strict=True)
    ]
