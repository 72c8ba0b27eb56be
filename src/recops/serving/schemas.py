"""Request and response models of the HTTP API (pydantic; BentoML validates requests with them
and answers 400 with the validation errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, create_model
from starlette.responses import JSONResponse

from recops.serving.config import LimitsConfig
from recops.serving.errors import ServingError


class Because(BaseModel):
    """A history item behind a recommendation and its contribution (model-specific scale)."""

    item_id: str
    weight: float


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    rank: int
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    tags: list[str] = Field(default_factory=list)
    # `explain: true`: the user's history items that contributed most (null from the fallback)
    because: list[Because] | None = None
    # `uncertainty: true`: interval of the model's score at serve.uncertainty.level
    score_low: float | None = None
    score_high: float | None = None


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str | None
    model_alias: str
    source: Literal["model", "fallback"]
    reranked: bool = False
    diversity: float = 0.0
    cached: bool = False


class SimilarResponse(BaseModel):
    item_id: str
    items: list[RecommendedItem]
    model_version: str | None
    model_alias: str


@dataclass(frozen=True)
class RequestModels:
    """Request bodies with the configured limits (built once, when the service is imported)."""

    recommend: type[BaseModel]
    similar: type[BaseModel]
    filters: type[BaseModel]


def request_models(limits: LimitsConfig) -> RequestModels:
    """`POST /recommend` and `POST /similar` bodies. Strict types: "5" is not a k, 1 is not a
    boolean; unknown filter keys are refused (a typo must not silently mean "no filter")."""
    ident = Annotated[str, Field(min_length=1, max_length=limits.max_id_length)]
    id_list = Annotated[list[ident], Field(max_length=limits.max_list_items)]
    k = Annotated[StrictInt, Field(ge=1, le=limits.k_max)]
    filters = create_model(
        "Filters",
        __config__=ConfigDict(extra="forbid"),
        category=(
            ident | Annotated[list[ident], Field(max_length=limits.max_list_items)] | None,
            Field(None, description="only items of this category (or of any of these)"),
        ),
        exclude_item_ids=(
            id_list,
            Field(default_factory=list, description="never recommend these items"),
        ),
    )
    filters_type: Any = filters  # built at run time: typed loosely
    recommend = create_model(
        "RecommendRequest",
        user_id=(ident, Field(description="external user id")),
        k=(k, Field(limits.k_default, description="number of items")),
        exclude_seen=(StrictBool, Field(True, description="drop items the user already had")),
        filters=(filters_type | None, None),
        rerank=(
            StrictBool | None,
            Field(None, description="hybrid rerank (default: serve.rerank.default)"),
        ),
        recent_item_ids=(
            id_list | None,
            Field(None, description="items the user just touched (cold-start context)"),
        ),
        diversity=(
            Annotated[float, Field(ge=0.0, le=1.0)] | None,
            Field(None, description="MMR diversity 0..1 (default: serve.rerank.diversity)"),
        ),
        explain=(StrictBool, Field(False, description="cite the history behind each item")),
        uncertainty=(StrictBool, Field(False, description="a score interval per item")),
    )
    similar = create_model(
        "SimilarRequest",
        item_id=(ident, Field(description="external item id")),
        k=(k, Field(limits.k_default, description="number of items")),
    )
    return RequestModels(recommend=recommend, similar=similar, filters=filters)


def error_response(exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)
