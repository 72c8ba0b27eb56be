"""The serving configuration (`conf/serve/default.yaml`) as typed, frozen dataclasses.

Where the service gets it from, first match wins:
1. a snapshot `serve_config.json` next to the service module (what `recops bento build` packs
   into a bento, so a built bento never depends on the project's `conf/`);
2. the project's `conf/` composed with Hydra (the `serve` group, interpolations resolved);
3. the defaults below (they mirror `conf/serve/default.yaml`).
`$RECOPS_SERVE_OVERRIDES` ("cache.size=0 canary.share=0.2", optionally `serve.`-prefixed)
applies on top of any of them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from recops.errors import ConfigError

log = logging.getLogger(__name__)
OVERRIDES_ENV = "RECOPS_SERVE_OVERRIDES"
SNAPSHOT_FILE = "serve_config.json"
MODES = ("live", "packaged")


@dataclass(frozen=True)
class LimitsConfig:
    k_default: int = 10
    k_max: int = 200
    max_id_length: int = 256
    max_list_items: int = 500


@dataclass(frozen=True)
class FallbackConfig:
    popularity_weight: float = 0.5
    content_weight: float = 0.5
    embedding_weight: float = 0.5
    max_seed_items: int = 50


@dataclass(frozen=True)
class RerankWeights:
    cf: float = 1.0
    content: float = 0.3
    popularity: float = 0.1
    recency: float = 0.1


@dataclass(frozen=True)
class RerankConfig:
    enabled: bool = True
    default: bool = False
    candidates: int = 100
    weights: RerankWeights = field(default_factory=RerankWeights)
    recency_half_life_days: float = 7.0
    diversity: float = 0.0
    diversity_similarity: str = "model"

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

    enabled: bool = True
    min_items: int = 100_000
    nlist: int | None = None
    nprobe: int = 16
    candidates: int = 50
    train_per_list: int = 40
    max_rounds: int = 3
    threads: int = 0

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
    max_items: int = 3

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ConfigError(f"serve.explain.max_items must be >= 1, got {self.max_items}")


@dataclass(frozen=True)
class UncertaintyConfig:
    level: float = 0.9
    precompute: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"serve.uncertainty.level must be in (0, 1), got {self.level}")


def _in_unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class CacheConfig:
    size: int = 10_000
    ttl_s: float = 300.0
    warm_users: int = 500


@dataclass(frozen=True)
class CanaryConfig:
    enabled: bool = True
    share: float = 0.1
    salt: str = "recops-canary"


@dataclass(frozen=True)
class PrecomputeConfig:
    enabled: bool = True
    path: str = "data/serving/precomputed.parquet"
    k: int = 50


@dataclass(frozen=True)
class RegistryClientConfig:
    """Bounds on the service's MLflow calls (set as MLflow's HTTP env vars in the service)."""

    timeout_s: int = 5
    max_retries: int = 1
    backoff_factor: int = 1


@dataclass(frozen=True)
class HealthcheckConfig:
    interval_s: int = 10
    timeout_s: int = 3
    retries: int = 3
    start_period_s: int = 60


@dataclass(frozen=True)
class ContainerConfig:
    """`recops bento containerize|run|base-image` (see conf/serve/default.yaml)."""

    engine: str = "auto"
    base_image: str = "localhost/recops-base:bookworm"
    image: str = "localhost/recops"
    suite: str = "bookworm"
    mirror: str | None = None
    base_packages: tuple[str, ...] = ("python3", "python3-venv", "python3-pip", "ca-certificates")
    config_dir: str = ".containers"
    storage_driver: str = "overlay"
    ca_bundle: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    network: str = "host"
    host: str = "127.0.0.1"
    stop_timeout_s: int = 30
    healthcheck: HealthcheckConfig = field(default_factory=HealthcheckConfig)


@dataclass(frozen=True)
class SloConfig:
    """Service level objectives: the load test's pass/fail and the alert rules' thresholds."""

    availability: float = 0.999
    p95_ms: float = 100.0
    p99_ms: float = 500.0
    error_rate: float = 0.01
    min_cache_hit_rate: float = 0.5
    max_fallback_rate: float = 0.3


@dataclass(frozen=True)
class ServeConfig:
    mode: str = "live"
    host: str = "127.0.0.1"
    port: int = 3000
    max_body_bytes: int = 65_536
    reload_wait_s: float = 5.0
    last_good_dir: str | None = "data/serving/last_good"
    model_name: str = "recops-recommender"
    alias: str = "champion"
    challenger_alias: str = "challenger"
    bento_model: str = "recops-recommender"
    service_name: str = "recops"
    workers: int = 2
    timeout_s: int = 10
    poll_interval_s: float = 30.0
    sync_interval_s: float = 1.0
    state_dir: str | None = None
    min_history: int = 3
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    precompute: PrecomputeConfig = field(default_factory=PrecomputeConfig)
    registry: RegistryClientConfig = field(default_factory=RegistryClientConfig)
    ann: AnnConfig = field(default_factory=AnnConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    drift_summary: str | None = "reports/drift/summary.json"
    container: ContainerConfig = field(default_factory=ContainerConfig)
    slo: SloConfig = field(default_factory=SloConfig)

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
        return _build(cls, values, "serve")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> ServeConfig:
        return dataclasses.replace(self, **changes)


T = TypeVar("T")


def _build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {unknown} (known: {sorted(fields)})")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = fields[name].default_factory
        nested = default if dataclasses.is_dataclass(default) else None
        if nested is not None and isinstance(nested, type):
            kwargs[name] = _build(nested, value or {}, f"{where}.{name}")
        else:
            kwargs[name] = _checked(value, str(fields[name].type), f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def _checked(value: Any, annotation: str, where: str) -> Any:
    """`value` if it fits a scalar annotation ("int", "float", "str | None", ...)."""
    if annotation == "tuple[str, ...]":  # a list of strings in YAML/JSON
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    options = [part.strip() for part in annotation.split("|")]
    if value is None:
        if "None" in options:
            return None
        raise ConfigError(f"{where} must not be null")
    for option in options:
        types = _SCALARS.get(option)
        if types is None:
            continue
        if isinstance(value, types) and not (option != "bool" and isinstance(value, bool)):
            return float(value) if option == "float" else value  # type: ignore[arg-type]
    raise ConfigError(f"{where} must be {annotation}, got {value!r}")


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
    """The serving config and where it came from (`snapshot`, `project` or `defaults`).

    `overrides` default to `$RECOPS_SERVE_OVERRIDES`.
    """
    values: dict[str, Any] | None = None
    origin = "defaults"
    if snapshot is not None and snapshot.is_file():
        values, origin = json.loads(snapshot.read_text()), f"snapshot {snapshot}"
    else:
        values = project_serve_values()
        if values is not None:
            origin = "project conf/"
    values = values or {}
    extra = parse_overrides(overrides if overrides is not None else os.environ.get(OVERRIDES_ENV))
    if extra:
        values = apply_overrides(values, extra)
        origin += f" + overrides {extra}"
    return ServeConfig.from_mapping(values), origin
