"""RecOps recommendation service (BentoML 1.4). Thin: the logic lives in `recops.serving`.

POST /recommend, /similar, /admin/reload, /cache/clear (typed `@bentoml.api` methods);
GET /model_info, /stats, /cache/stats, /rollout/status, /admin/reload/status (a mounted
Starlette app); built in: /healthz, /livez, /readyz (ready once a model is loaded; recops adds
the details as JSON), /metrics (Prometheus).

Run: `make serve` / `recops serve` (from the project), `bentoml serve recops:latest` (a bento).
"""

import logging
import os
from pathlib import Path
from typing import Any, cast

import anyio
import bentoml
from starlette.responses import JSONResponse, Response

from recops.redaction import install_log_redaction
from recops.serving.admin import AdminAccess, bound_host
from recops.serving.config import SNAPSHOT_FILE, load_serve_config
from recops.serving.errors import ServingError
from recops.serving.middleware import ServingMiddleware, current_note, quiet_client_errors
from recops.serving.routes import RELOAD_STATUS, get_app
from recops.serving.runtime import ServingRuntime, current_runtime
from recops.serving.schemas import (
    RecommendResponse,
    SimilarResponse,
    error_response,
    request_models,
)

log = logging.getLogger("recops.serving")
# BentoML's worker logging keeps the root logger at WARNING: let recops' INFO lines through
# (loads, swaps, failed reloads) to the same handler.
logging.getLogger("recops").setLevel(os.environ.get("RECOPS_LOG_LEVEL", "INFO"))
quiet_client_errors()  # a rejected request is one log line, not a traceback
install_log_redaction()  # no password of a URI (MLFLOW_TRACKING_URI...) in any log line
# A bento carries the config snapshot written by `recops bento build` next to this file.
CONFIG, CONFIG_ORIGIN = load_serve_config(Path(__file__).with_name(SNAPSHOT_FILE))
LIMITS = CONFIG.limits
# Request bodies with the configured limits. They are `input_spec`s (BentoML validates the
# JSON body with them: 400 with the errors) and the methods take `**request`: BentoML
# inspects a method's signature on every call, which costs ~30 us per parameter.
REQUESTS = request_models(LIMITS)
# Admin endpoints: a token, or loopback only (the address BentoML's socket is bound to).
ACCESS = AdminAccess.from_env(bound_host(CONFIG.host))


@bentoml.asgi_app(get_app(current_runtime), path="/")
@bentoml.service(
    name=CONFIG.service_name,
    workers=CONFIG.workers,
    traffic={"timeout": CONFIG.timeout_s},
    http={"host": CONFIG.host, "port": CONFIG.port},  # BentoML's own default host: 0.0.0.0
)
class RecOps:
    """Recommendations from the registry's champion (or the packaged model), with a
    popularity + content fallback for unknown and light users, canary and hot reload."""

    if CONFIG.mode == "packaged":
        # Declared only in packaged mode: `bentoml build` packs it into the bento, and live
        # mode must start without it.
        packaged_model = bentoml.models.BentoModel(f"{CONFIG.bento_model}:latest")

    def __init__(self) -> None:
        packaged = None
        if CONFIG.mode == "packaged":

            def packaged() -> Path:
                return Path(self.packaged_model.path)

        self.runtime = ServingRuntime.create(
            CONFIG, packaged_dir=packaged, origin=CONFIG_ORIGIN, exit_with_parent=True
        )
        log.info("recops serving: mode=%s, config from %s", CONFIG.mode, CONFIG_ORIGIN)
        ACCESS.announce()

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.on_shutdown
    def stop_background(self) -> None:
        self.runtime.stop()

    @bentoml.api(route="/recommend", input_spec=REQUESTS.recommend)
    async def recommend(self, **request: Any) -> RecommendResponse:
        """Top-k items for a user (external ids): `{user_id, k, exclude_seen, filters:
        {category, exclude_item_ids}, rerank, recent_item_ids, diversity, explain,
        uncertainty}`. Unknown users and users with
        little history get the fallback; `recent_item_ids` are items the user just touched."""
        engine = self.runtime.engine
        filters = request.get("filters")
        try:
            query = engine.query(
                request["user_id"],
                request["k"],
                request["exclude_seen"],
                getattr(filters, "category", None),
                getattr(filters, "exclude_item_ids", None),
                request["rerank"],
                request["recent_item_ids"],
                request["diversity"],
                request["explain"],
                request["uncertainty"],
            )
            answer = engine.recommend(query, current_note())
        except ServingError as exc:
            return cast(Any, error_response(exc))  # BentoML passes a Response through
        # pre-rendered JSON of the RecommendResponse shape (tests check it against the model)
        return cast(Any, Response(answer.to_json(), media_type="application/json"))

    @bentoml.api(route="/similar", input_spec=REQUESTS.similar)
    async def similar(self, **request: Any) -> SimilarResponse:
        """Items most similar to `item_id` (`{item_id, k}`); 404 for an unknown item."""
        try:
            return SimilarResponse.model_validate(
                self.runtime.engine.similar(request["item_id"], request["k"])
            )
        except ServingError as exc:
            return cast(Any, error_response(exc))  # BentoML passes a Response through

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self) -> dict[str, Any]:
        """Check the registry aliases now and load what changed (the old model keeps serving
        until the new one is ready; a failed load keeps it). Answers with the result within
        `serve.reload_wait_s`, else 202 with the status URL (the reload goes on)."""
        job = self.runtime.request_reload()
        if await anyio.to_thread.run_sync(job.done.wait, CONFIG.reload_wait_s):
            return job.result or {}
        body = {"status": "accepted", "status_url": RELOAD_STATUS, **job.describe()}
        return cast(Any, JSONResponse(body, status_code=202))

    @bentoml.api(route="/cache/clear")
    async def cache_clear(self) -> dict[str, Any]:
        """Empty the answer caches (every worker, within one sync interval)."""
        return self.runtime.clear_cache()


cast(Any, RecOps).add_asgi_middleware(
    ServingMiddleware,
    observer=current_runtime,
    access=lambda: ACCESS,
    max_body_bytes=CONFIG.max_body_bytes,
)
