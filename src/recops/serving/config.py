"""The serving configuration (`conf/serve/default.yaml`, the only home of its defaults) as
typed, frozen dataclasses built by `recops.settings.build`.

Where the service gets it from, first match wins:
1. a snapshot `serve_config.json` next to the service module (what `recops bento build` packs
   into a bento, so a built bento never depends on the project's `conf/`);
2. the project's `conf/` composed with Hydra (the `serve` group, interpolations resolved).
`$RECOPS_SERVE_OVERRIDES` ("cache.size=0 canary.share=0.2", optionally `serve.`-prefixed)
applies on top of either.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recops.errors import ConfigError
from recops.settings import build, build_group

log = logging.getLogger(__name__)
OVERRIDES_ENV = "RECOPS_SERVE_OVERRIDES"
SNAPSHOT_FILE = "serve_config.json"
MODES = ("live", "packaged")


@dataclass(frozen=True)
class LimitsConfig:
    k_default: int
    k_max: int
    max_id_length: int
    max_list_items: int


@dataclass(frozen=True)
class FallbackConfig:
    popularity_weight: float
    content_weight: float
    embedding_weight: float
    max_seed_items: int


@dataclass(frozen=True)
class RerankWeights:
    cf: float
    content: float
    popularity: float
    recency: float


@dataclass(frozen=True)
class RerankConfig:
    enabled: bool
    default: bool
    candidates: int
    weights: RerankWeights
    recency_half_life_days: float
    diversity: float
    diversity_similarity: str

    def __post_init__(self) -> None:
        _in_unit("serve.rerank.diversity", self.diversity)
        if self.diversity_similarity not in ("model", "content"):
            raise ConfigError(
                "serve.rerank.diversity_similarity must be 'model' or 'content', "
                f"got {self.diversity_similarity!r}"
            )


@dataclass(frozen=True)
class AnnConfig:
    """Approximate nearest-neighbour retrieval (recops.serving.ann)."""

    enabled: bool
    min_items: int
    nlist: int | None
    nprobe: int
    candidates: int
    train_per_list: int
    max_rounds: int
    threads: int

    def __post_init__(self) -> None:
        for name in ("min_items", "nprobe", "candidates", "train_per_list", "max_rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.ann.{name} must be >= 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise ConfigError(f"serve.ann.nlist must be >= 1 or null, got {self.nlist}")
        if self.threads < 0:
            raise ConfigError(f"serve.ann.threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class ExplainConfig:
    max_items: int

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ConfigError(f"serve.explain.max_items must be >= 1, got {self.max_items}")


@dataclass(frozen=True)
class UncertaintyConfig:
    level: float
    precompute: bool

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"serve.uncertainty.level must be in (0, 1), got {self.level}")


def _in_unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class CacheConfig:
    size: int
    ttl_s: float
    warm_users: int


@dataclass(frozen=True)
class CanaryConfig:
    enabled: bool
    share: float
    salt: str


@dataclass(frozen=True)
class PrecomputeConfig:
    enabled: bool
    path: str
    k: int


@dataclass(frozen=True)
class RegistryClientConfig:
    """Bounds on the service's MLflow calls (set as MLflow's HTTP env vars in the service)."""

    timeout_s: int
    max_retries: int
    backoff_factor: int


@dataclass(frozen=True)
class HealthcheckConfig:
    interval_s: int
    timeout_s: int
    retries: int
    start_period_s: int


@dataclass(frozen=True)
class ContainerConfig:
    """`recops bento containerize|run|base-image` (see conf/serve/default.yaml)."""

    engine: str
    base_image: str
    image: str
    suite: str
    mirror: str | None
    base_packages: tuple[str, ...]
    config_dir: str
    storage_driver: str
    ca_bundle: str | None
    index_url: str | None
    extra_index_urls: tuple[str, ...]
    network: str
    host: str
    stop_timeout_s: int
    healthcheck: HealthcheckConfig


@dataclass(frozen=True)
class SloConfig:
    """Service level objectives: the load test's pass/fail and the alert rules' thresholds."""

    availability: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    min_cache_hit_rate: float
    max_fallback_rate: float


@dataclass(frozen=True)
class ServeConfig:
    mode: str
    host: str
    port: int
    max_body_bytes: int
    reload_wait_s: float
    last_good_dir: str | None
    model_name: str
    alias: str
    challenger_alias: str
    bento_model: str
    service_name: str
    workers: int
    timeout_s: int
    poll_interval_s: float
    sync_interval_s: float
    state_dir: str | None
    min_history: int
    limits: LimitsConfig
    fallback: FallbackConfig
    rerank: RerankConfig
    cache: CacheConfig
    canary: CanaryConfig
    precompute: PrecomputeConfig
    registry: RegistryClientConfig
    ann: AnnConfig
    explain: ExplainConfig
    uncertainty: UncertaintyConfig
    drift_summary: str | None
    container: ContainerConfig
    slo: SloConfig

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"serve.mode must be one of {list(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.canary.share <= 1.0:
            raise ConfigError(f"serve.canary.share must be in [0, 1], got {self.canary.share}")
        if self.limits.k_max < 1 or not 1 <= self.limits.k_default <= self.limits.k_max:
            raise ConfigError("serve.limits: need 1 <= k_default <= k_max")
        for name in ("poll_interval_s", "sync_interval_s", "max_body_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"serve.{name} must be > 0")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"serve.port must be in 1..65535, got {self.port}")
        if self.registry.timeout_s <= 0 or self.registry.max_retries < 0:
            raise ConfigError("serve.registry: need timeout_s > 0 and max_retries >= 0")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServeConfig:
        """Build from a plain (resolved) mapping; unknown keys are an error, not ignored."""
        return build(cls, values, "serve")

    @classmethod
    def from_config(cls, cfg: Any) -> ServeConfig:
        """From the root config's `serve` group."""
        return build_group(cls, cfg, "serve")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> ServeConfig:
        return dataclasses.replace(self, **changes)


def parse_overrides(text: str | Sequence[str] | None) -> list[str]:
    """`key=value` overrides, `serve.` prefix optional ("cache.size=0 serve.workers=1")."""
    if not text:
        return []
    items = shlex.split(text) if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"serve override {item!r} is not key=value")
        out.append(item.removeprefix("serve."))
    return out


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Merge `key=value` dotlist overrides into a plain mapping (values parsed as YAML)."""
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(
        OmegaConf.create(dict(values)), OmegaConf.from_dotlist(list(overrides))
    )
    result = OmegaConf.to_container(merged, resolve=True)
    assert isinstance(result, dict)
    return {str(k): v for k, v in result.items()}


def project_serve_values() -> dict[str, Any] | None:
    """The `serve` group of the project's composed config, or None outside a project."""
    from recops.config import compose, find_project_root, to_dict

    try:
        find_project_root()
    except ConfigError:
        return None
    cfg = compose([])
    if "serve" not in cfg:
        return None
    return to_dict(cfg.serve)


def load_serve_config(
    snapshot: Path | None = None, overrides: str | Sequence[str] | None = None
) -> tuple[ServeConfig, str]:
    """The serving config and where it came from (`snapshot ...` or `project conf/`).

    `overrides` default to `$RECOPS_SERVE_OVERRIDES`.
    """
    values: dict[str, Any] | None = None
    if snapshot is not None and snapshot.is_file():
        values, origin = json.loads(snapshot.read_text()), f"snapshot {snapshot}"
    else:
        values, origin = project_serve_values(), "project conf/"
    if values is None:
        where = f"no {snapshot}" if snapshot is not None else "no snapshot given"
        raise ConfigError(
            f"no serving config: {where} and no project conf/ (run inside the project, "
            f"set $RECOPS_ROOT, or serve a bento built by `recops bento build`)"
        )
    extra = parse_overrides(overrides if overrides is not None else os.environ.get(OVERRIDES_ENV))
    if extra:
        values = apply_overrides(values, extra)
        origin += f" + overrides {extra}"
    return ServeConfig.from_mapping(values), origin
