"""Request and response models of the HTTP API (pydantic; BentoML validates requests with them
and answers 400 with the validation errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, create_model
from starlette.responses import JSONResponse

from recops.serving.config import LimitsConfig
from recops.serving.refs import ServingError


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    rank: int
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    tags: list[str] = Field(default_factory=list)


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str | None
    model_alias: str
    source: Literal["model", "fallback"]
    reranked: bool = False
    cached: bool = False


class SimilarResponse(BaseModel):
    item_id: str
    items: list[RecommendedItem]
    model_version: str | None
    model_alias: str


@dataclass(frozen=True)
class RequestTypes:
    """Annotated request field types with the configured limits (built once at import)."""

    user_id: Any
    item_id: Any
    k: Any
    flag: Any
    id_list: Any
    filters: type[BaseModel]


def request_types(limits: LimitsConfig) -> RequestTypes:
    ident = Annotated[str, Field(min_length=1, max_length=limits.max_id_length)]
    id_list = Annotated[list[ident], Field(max_length=limits.max_list_items)]
    category = Annotated[str, Field(min_length=1, max_length=limits.max_id_length)]
    filters = create_model(
        "Filters",
        __config__=ConfigDict(extra="forbid"),
        category=(
            category | Annotated[list[category], Field(max_length=limits.max_list_items)] | None,
            Field(None, description="only items of this category (or of any of these)"),
        ),
        exclude_item_ids=(
            id_list,
            Field(default_factory=list, description="never recommend these items"),
        ),
    )
    return RequestTypes(
        user_id=ident,
        item_id=ident,
        k=Annotated[StrictInt, Field(ge=1, le=limits.k_max)],
        flag=StrictBool,
        id_list=id_list,
        filters=filters,
    )


def error_response(exc: ServingError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)
