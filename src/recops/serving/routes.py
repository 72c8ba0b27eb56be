"""The read-only GET endpoints (BentoML 1.4 `@bentoml.api` methods are POST-only, so these
are a small Starlette app mounted into the service)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from recops.serving import status
from recops.serving.runtime import ServingRuntime

RELOAD_STATUS = "/admin/reload/status"


def get_app(runtime: Callable[[], ServingRuntime | None]) -> Starlette:
    def view(method: Callable[[ServingRuntime], dict[str, Any]]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> JSONResponse:
            rt = runtime()
            if rt is None:
                return JSONResponse({"error": "the service is starting"}, status_code=503)
            return JSONResponse(await anyio.to_thread.run_sync(method, rt))

        return endpoint

    return Starlette(
        routes=[
            Route("/model_info", view(status.model_info), methods=["GET"]),
            Route("/stats", view(status.stats_summary), methods=["GET"]),
            Route("/cache/stats", view(status.cache_summary), methods=["GET"]),
            Route("/rollout/status", view(status.rollout_status), methods=["GET"]),
            Route(RELOAD_STATUS, view(status.reload_status), methods=["GET"]),
        ]
    )
