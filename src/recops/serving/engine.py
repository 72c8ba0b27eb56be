"""Request routing: champion or canary challenger, answer cache, fallback to the champion when
the challenger fails. Works on whatever `Slots` the loader currently holds (read once per
request, so a swap in the middle of a request cannot mix two models)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from recops.serving.canary import in_canary
from recops.serving.config import ServeConfig
from recops.serving.errors import BadRequestError, NotReadyError
from recops.serving.served import Answer, Query, ServedModel

log = logging.getLogger(__name__)
Note = MutableMapping[str, Any]


@dataclass(frozen=True)
class Slots:
    """What a worker serves right now; replaced as a whole (an atomic reference swap)."""

    champion: ServedModel | None = None
    challenger: ServedModel | None = None

    def served(self) -> list[tuple[str, ServedModel]]:
        pairs = [("champion", self.champion), ("challenger", self.challenger)]
        return [(role, m) for role, m in pairs if m is not None]


@dataclass(frozen=True)
class Recommendation:
    """A /recommend answer: `to_json()` for HTTP (the items JSON is pre-rendered), `to_dict()`
    for Python callers; both have the shape of `schemas.RecommendResponse`."""

    user_id: str
    answer: Answer
    model_version: str | None
    model_alias: str
    cached: bool

    def header(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "model_version": self.model_version,
            "model_alias": self.model_alias,
            "source": self.answer.source,
            "reranked": self.answer.reranked,
            "diversity": self.answer.diversity,
            "cached": self.cached,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.answer.items, **self.header()}

    def to_json(self) -> bytes:
        head = json.dumps(self.header(), separators=(",", ":"))
        return f'{{"items":{self.answer.items_json},{head[1:]}'.encode()


def _ids(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values)) if values else ()


class Engine:
    def __init__(
        self, cfg: ServeConfig, slots: Callable[[], Slots], not_ready: Callable[[], str]
    ) -> None:
        self.cfg = cfg
        self._slots = slots
        self._not_ready = not_ready

    def champion(self) -> ServedModel:
        model = self._slots().champion
        if model is None:
            raise NotReadyError(f"no model loaded yet: {self._not_ready()}")
        return model

    def query(
        self,
        user_id: str,
        k: int | None = None,
        exclude_seen: bool = True,
        category: str | Sequence[str] | None = None,
        exclude_item_ids: Sequence[str] | None = None,
        rerank: bool | None = None,
        recent_item_ids: Sequence[str] | None = None,
        diversity: float | None = None,
        explain: bool = False,
        uncertainty: bool = False,
    ) -> Query:
        """A normalised query; checks what the HTTP schema cannot (it does most of it)."""
        lim = self.cfg.limits
        k = self._k(k)
        if not user_id or len(user_id) > lim.max_id_length:
            raise BadRequestError(f"user_id must have 1 to {lim.max_id_length} characters")
        categories = (category,) if isinstance(category, str) else _ids(category)
        use_rerank = self.cfg.rerank.enabled and (
            self.cfg.rerank.default if rerank is None else bool(rerank)
        )
        return Query(
            user_id=user_id,
            k=k,
            exclude_seen=bool(exclude_seen),
            categories=categories,
            exclude_item_ids=_ids(exclude_item_ids),
            rerank=use_rerank,
            recent_item_ids=_ids(recent_item_ids),
            diversity=self._diversity(diversity),
            explain=bool(explain),
            uncertainty=bool(uncertainty),
        )

    def _k(self, k: int | None) -> int:
        """`k` (the default when None) if it is within the configured range."""
        lim = self.cfg.limits
        k = lim.k_default if k is None else int(k)
        if not 1 <= k <= lim.k_max:
            raise BadRequestError(f"k must be between 1 and {lim.k_max}, got {k}")
        return k

    def _diversity(self, value: float | None) -> float:
        """The request's MMR strength (default: serve.rerank.diversity; 0 if rerank is off)."""
        if not self.cfg.rerank.enabled:
            return 0.0
        value = self.cfg.rerank.diversity if value is None else float(value)
        if not 0.0 <= value <= 1.0:
            raise BadRequestError(f"diversity must be between 0 and 1, got {value}")
        return value

    def recommend(self, q: Query, note: Note | None = None) -> Recommendation:
        """The /recommend answer; `note` collects what the metrics need (source, version...)."""
        note = {} if note is None else note
        slots = self._slots()
        champion = slots.champion
        if champion is None:
            raise NotReadyError(f"no model loaded yet: {self._not_ready()}")
        served, role = champion, self.cfg.alias
        canary = self.cfg.canary
        if (
            slots.challenger is not None
            and canary.enabled
            and in_canary(q.user_id, canary.share, canary.salt)
        ):
            served, role = slots.challenger, self.cfg.challenger_alias
        note.update(version=served.ref.version, role=role)
        try:
            answer, cached = self._answer(served, q)
        except Exception:
            if served is champion:
                raise
            log.exception("challenger v%s failed; the champion answers", served.ref.version)
            note["challenger_failed"] = served.ref.version
            served, role = champion, self.cfg.alias
            note.update(version=served.ref.version, role=role)
            answer, cached = self._answer(served, q)
        note.update(source=answer.source, cached=cached, precomputed=answer.precomputed)
        return Recommendation(q.user_id, answer, served.ref.version, role, cached)

    @staticmethod
    def _answer(served: ServedModel, q: Query) -> tuple[Answer, bool]:
        hit = served.cache.get(q)
        if hit is not None:
            return hit, True
        answer = served.answer(q)
        served.cache.put(q, answer)
        return answer, False

    def similar(self, item_id: str, k: int | None = None) -> dict[str, Any]:
        k = self._k(k)
        champion = self.champion()
        return {
            "item_id": item_id,
            "items": champion.similar(item_id, k),
            "model_version": champion.ref.version,
            "model_alias": self.cfg.alias,
        }

    def clear_caches(self) -> int:
        return sum(m.cache.clear() for _, m in self._slots().served())

    def cache_stats(self) -> dict[str, Any]:
        return {
            role: {"version": m.ref.version, **m.cache.stats()}
            for role, m in self._slots().served()
        }
