"""ASGI middleware timing the recommendation endpoints and counting their outcomes.

It sees every request to the observed paths, including the ones BentoML rejects before the
handler runs (malformed JSON, schema violations: 400), so status counts are complete. The
handler adds what only it knows (source, model version, cache hit) to `current_note()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.stats import RECOMMEND, SIMILAR

_NOTE: ContextVar[dict[str, Any] | None] = ContextVar("recops_serving_note", default=None)


class Observer(Protocol):
    def observe(
        self, endpoint: str, status: int, seconds: float, note: Mapping[str, Any]
    ) -> None: ...


def current_note() -> dict[str, Any]:
    """The note of the request being handled (a throw-away dict outside observed requests)."""
    note = _NOTE.get()
    return note if note is not None else {}


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        observer: Callable[[], Observer | None],
        paths: tuple[str, ...] = (RECOMMEND, SIMILAR),
    ) -> None:
        self.app = app
        self.observer = observer
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in self.paths or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        note: dict[str, Any] = {}
        token = _NOTE.set(note)
        status = 500
        start = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            _NOTE.reset(token)
            observer = self.observer()
            if observer is not None:
                observer.observe(str(path), status, time.perf_counter() - start, note)
