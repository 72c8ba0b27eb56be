"""The ASGI middleware in front of the BentoML app: admin access, request size limit, readiness
details, request timing, and one log line per rejected request.

It sees every request, including the ones BentoML rejects before the handler runs (malformed
JSON, schema violations: 400), so status counts are complete. The handler adds what only it
knows (source, model version, cache hit) to `current_note()`. Order, outermost first:
observe and log -> admin access (401/403) -> body limit (413, before anything parses the body)
-> `/readyz` details -> the app.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.admin import AdminAccess
from recops.serving.stats import RECOMMEND, SIMILAR

log = logging.getLogger("recops.serving.requests")
_NOTE: ContextVar[dict[str, Any] | None] = ContextVar("recops_serving_note", default=None)
READYZ = "/readyz"
#: Response bodies of rejected requests are read for the log line up to this size.
_MAX_REASON_BODY = 16_384


class Observer(Protocol):
    def observe(
        self, endpoint: str, status: int, seconds: float, note: Mapping[str, Any]
    ) -> None: ...

    def readiness(self) -> dict[str, Any]: ...


def current_note() -> dict[str, Any]:
    """The note of the request being handled (a throw-away dict outside observed requests)."""
    note = _NOTE.get()
    return note if note is not None else {}


async def send_json(send: Send, status: int, payload: Mapping[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def rejection_reason(body: bytes) -> str:
    """The `error` of a JSON error body, with the first validation detail (one line)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip() or "-"
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return str(data)[:200]
    reason = str(data.get("error", "-"))
    detail = data.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        reason += f" ({where}: {first.get('msg')})" if where else f" ({first.get('msg')})"
    return " ".join(reason.split())[:300]


class ServingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        observer: Callable[[], Observer | None],
        access: Callable[[], AdminAccess | None] = lambda: None,
        max_body_bytes: int = 65_536,
        paths: tuple[str, ...] = (RECOMMEND, SIMILAR),
    ) -> None:
        self.app = app
        self.observer = observer
        self.access = access
        self.max_body_bytes = max_body_bytes
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = str(scope.get("path")), str(scope.get("method"))
        observed = path in self.paths and method == "POST"
        note: dict[str, Any] = {}
        token = _NOTE.set(note) if observed else None
        status, reason = 500, bytearray()
        start = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and _keeps_reason(status, reason):
                reason.extend(message.get("body", b""))
            await send(message)

        try:
            await self._guarded(scope, receive, send_observed)
        finally:
            if token is not None:
                _NOTE.reset(token)
            if 400 <= status < 500:
                why = rejection_reason(bytes(reason))
                log.info("rejected %s %s %d: %s", method, path, status, why)
            observer = self.observer()
            if observed and observer is not None:
                observer.observe(path, status, time.perf_counter() - start, note)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        access = self.access()
        if access is not None:
            denied = access.check(str(scope.get("path")), _headers(scope))
            if denied is not None:
                await send_json(send, denied[0], {"error": denied[1]})
                return
        body = await self._limited(scope, receive, send)
        if body is None:
            return
        if scope.get("path") == READYZ and scope.get("method") == "GET":
            await self._readyz(scope, body, send)
            return
        await self.app(scope, body, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """`receive` for the app, or None after answering 413 (the body is never parsed)."""
        limit = self.max_body_bytes
        headers = _headers(scope)
        length = headers.get("content-length")
        too_big = f"request body larger than {limit} bytes (serve.max_body_bytes)"
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await send_json(send, 413, {"error": too_big})
                return None
            return receive
        if "chunked" not in headers.get("transfer-encoding", ""):
            return receive
        messages, size = [], 0  # no Content-Length: count what streams in
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await send_json(send, 413, {"error": too_big})
                return None
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """BentoML's readiness status, with what recops knows as the JSON body."""
        observer = self.observer()
        if observer is None:
            await self.app(scope, receive, send)
            return
        status = 503

        async def keep_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await self.app(scope, receive, keep_status)
        await send_json(send, status, {**observer.readiness(), "status": status})


class _ClientErrorFilter(logging.Filter):
    """Drops BentoML's ERROR traceback for a request it rejected with a 4xx (bad JSON, schema
    violation): `ServingMiddleware` logs those in one line. 5xx tracebacks stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Exception on %s [%s]" or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if type(exc).__name__ == "ValidationError":
            return False
        code = getattr(getattr(exc, "error_code", None), "value", 500)
        return not (isinstance(code, int) and 400 <= code < 500)


def quiet_client_errors(logger: str = "bentoml._internal.server.http_app") -> None:
    """Install the filter on BentoML's request-exception logger (once)."""
    target = logging.getLogger(logger)
    if not any(isinstance(f, _ClientErrorFilter) for f in target.filters):
        target.addFilter(_ClientErrorFilter())


def _keeps_reason(status: int, reason: bytearray) -> bool:
    return 400 <= status < 500 and len(reason) < _MAX_REASON_BODY


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
