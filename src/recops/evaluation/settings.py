"""The `eval` config section as a typed, validated object (one clear error per bad key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recops.errors import ConfigError


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation runs: cut-offs, user sampling, bootstrap, threads."""

    ks: tuple[int, ...] = (5, 10, 20)
    chunk_size: int = 2048
    light_user_max_interactions: int = 5
    #: Evaluate every test user up to this many, else a seeded sample of this size
    #: stratified by segment (None: always every user).
    max_users: int | None = None
    #: In a sample, each segment (heavy, light, cold) keeps at least this many users (or all).
    min_segment_users: int = 200
    seed: int = 42
    threads: int = 1
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    #: Metrics compared with the popularity baseline by the paired tests.
    compare_metrics: tuple[str, ...] = ("ndcg_at_10",)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> EvalSettings:
        """From the root config: `cfg.eval`, plus `cfg.threads` and `cfg.seed`."""
        node = OmegaConf.to_container(cfg.eval, resolve=True)
        if not isinstance(node, dict):
            raise ConfigError("the eval config section must be a mapping")
        ev = {str(k): v for k, v in node.items()}
        boot = ev.get("bootstrap") or {}
        ks = ev.get("ks", [5, 10, 20])
        if not isinstance(ks, list) or not ks:
            raise ConfigError(f"eval.ks must be a non-empty list of positive integers, got {ks!r}")
        settings = cls(
            ks=tuple(_int("eval.ks", k, minimum=1) for k in ks),
            chunk_size=_int("eval.chunk_size", ev.get("chunk_size", 2048), minimum=1),
            light_user_max_interactions=_int(
                "eval.light_user_max_interactions",
                ev.get("light_user_max_interactions", 5),
                minimum=0,
            ),
            max_users=_optional_int("eval.max_users", ev.get("max_users"), minimum=1),
            min_segment_users=_int(
                "eval.min_segment_users", ev.get("min_segment_users", 200), minimum=1
            ),
            seed=_int("eval.seed", ev.get("seed", cfg.get("seed", 42)), minimum=0),
            threads=_int("threads", cfg.get("threads", 1), minimum=0),
            bootstrap_samples=_int(
                "eval.bootstrap.samples", boot.get("samples", 1000), minimum=10
            ),
            confidence=_fraction("eval.bootstrap.confidence", boot.get("confidence", 0.95)),
            compare_metrics=tuple(str(m) for m in ev.get("compare_metrics") or ["ndcg_at_10"]),
        )
        return settings


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
