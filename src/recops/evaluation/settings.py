"""The `eval` config section as a typed, validated object (one clear error per bad key)
and the evaluation's own settings (`EvalSettings`, the parameters of `evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from recops.errors import ConfigError
from recops.settings import build_group


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation runs: cut-offs, user sampling, bootstrap, threads."""

    ks: tuple[int, ...] = (5, 10, 20)
    chunk_size: int = 2048
    light_user_max_interactions: int = 5
    #: Evaluate every test user up to this many, else a seeded sample of this size
    #: stratified by segment (None: always every user).
    max_users: int | None = 50_000
    #: In a sample, each segment (heavy, light, cold) keeps at least this many users (or all).
    min_segment_users: int = 200
    seed: int = 42
    threads: int = 1
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    #: Metrics compared with the popularity baseline by the paired tests.
    compare_metrics: tuple[str, ...] = ("ndcg_at_10", "recall_at_10")
    #: Item-metadata columns whose values make the item vectors of `diversity_at_k` and
    #: `feature_serendipity_at_k` (`tags` are split on `|`).
    diversity_features: tuple[str, ...] = ("category", "brand", "tags")
    #: The short head of `long_tail_at_k`: the most popular items holding this share of
    #: the training interactions.
    long_tail_head: float = 0.2

    @classmethod
    def from_config(cls, cfg: DictConfig) -> EvalSettings:
        """From the root config: `cfg.eval` (every key, checked), plus `cfg.threads`."""
        ev = EvalSection.from_config(cfg)
        return cls(
            ks=ev.ks,
            chunk_size=ev.chunk_size,
            light_user_max_interactions=ev.light_user_max_interactions,
            max_users=ev.max_users,
            min_segment_users=ev.min_segment_users,
            seed=ev.seed,
            threads=_int("threads", cfg.threads, minimum=0),
            bootstrap_samples=ev.bootstrap.samples,
            confidence=ev.bootstrap.confidence,
            compare_metrics=ev.compare_metrics,
            diversity_features=ev.diversity_features,
            long_tail_head=ev.long_tail_head,
        )


@dataclass(frozen=True)
class BootstrapSection:
    samples: int
    confidence: float


@dataclass(frozen=True)
class EvidentlySection:
    """Evidently's recsys report on a seeded subset of `users` evaluated users."""

    enabled: bool
    k: int
    users: int


@dataclass(frozen=True)
class EvalSection:
    """`conf/eval/default.yaml` as written (the only home of the config's defaults; the
    defaults of `EvalSettings`, for a direct `evaluate()` call, equal them: tested)."""

    ks: tuple[int, ...]
    chunk_size: int
    light_user_max_interactions: int
    plot_metrics: tuple[str, ...]
    max_users: int | None
    min_segment_users: int
    seed: int
    bootstrap: BootstrapSection
    compare_metrics: tuple[str, ...]
    diversity_features: tuple[str, ...]
    long_tail_head: float
    evidently: EvidentlySection

    def __post_init__(self) -> None:
        if not self.ks:
            raise ConfigError("eval.ks must be a non-empty list of positive integers, got []")
        for i, k in enumerate(self.ks):
            _int(f"eval.ks[{i}]", k, minimum=1)
        _int("eval.chunk_size", self.chunk_size, minimum=1)
        _int("eval.light_user_max_interactions", self.light_user_max_interactions, minimum=0)
        _optional_int("eval.max_users", self.max_users, minimum=1)
        _int("eval.min_segment_users", self.min_segment_users, minimum=1)
        _int("eval.seed", self.seed, minimum=0)
        _int("eval.bootstrap.samples", self.bootstrap.samples, minimum=10)
        _fraction("eval.bootstrap.confidence", self.bootstrap.confidence)
        _fraction("eval.long_tail_head", self.long_tail_head)
        _int("eval.evidently.k", self.evidently.k, minimum=1)
        _int("eval.evidently.users", self.evidently.users, minimum=1)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> EvalSection:
        return build_group(cls, cfg, "eval")


def _int(key: str, value: Any, minimum: int) -> int:
    """`value` as an int >= minimum, or a ConfigError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    try:
        number = int(value)
        exact = float(value) == number
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}") from None
    if not exact or number < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return number


def _optional_int(key: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    return _int(key, value, minimum)


def _fraction(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number in (0, 1), got {value!r}") from None
    if not 0 < number < 1:
        raise ConfigError(f"{key} must be a number in (0, 1), got {value!r}")
    return number
