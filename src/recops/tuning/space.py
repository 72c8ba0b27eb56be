"""Search spaces from `conf/sweep/<model>.yaml` (`sweep.space`) as Optuna suggestions.

A space maps Hydra override paths to distributions::

    space:
      model.factors: {type: int, low: 16, high: 256, log: true}
      model.regularization: {type: float, low: 0.001, high: 1.0, log: true}
      model.similarity: {type: categorical, choices: [cosine, bm25]}

Each suggestion becomes an override string (`model.factors=64`) composed on top of the
study's base overrides, so a trial's config is built exactly like any other run's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from recops.config import to_dict
from recops.errors import ConfigError

Choice = None | bool | int | float | str
TYPES = ("int", "float", "categorical")
_FIELDS = {
    "int": {"type", "low", "high", "log", "step"},
    "float": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
_BARE_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")
_RESERVED = {"true", "false", "null", "none", "nan", "inf"}
_ABSENT = object()


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the search space: an override path and its distribution."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Choice, ...] = ()

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this dimension can suggest."""
        if self.type == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.type == "int" and value != int(value):
            return False
        assert self.low is not None and self.high is not None
        on_grid = self.step is None or math.isclose(
            (value - self.low) / self.step, round((value - self.low) / self.step)
        )
        return on_grid and self.low <= value <= self.high

    def suggest(self, trial: optuna.trial.BaseTrial) -> Choice:
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None  # checked by parse_space
        if self.type == "int":
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


def parse_space(space: Mapping[str, Any] | DictConfig | None) -> list[ParamSpec]:
    """Validated specs of a `sweep.space` mapping; a `ConfigError` names the faulty key."""
    if isinstance(space, DictConfig):
        space = to_dict(space)
    if not space:
        raise ConfigError("sweep.space is empty: nothing to search")
    if not isinstance(space, Mapping):
        raise ConfigError(f"sweep.space must be a mapping, got {type(space).__name__}")
    return [parse_param(str(key), spec) for key, spec in space.items()]


def parse_param(key: str, spec: Any) -> ParamSpec:
    where = f"sweep.space.{key}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {{type: int, low: 1, high: 10}}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type must be one of {', '.join(TYPES)}, got {kind!r}")
    unknown = set(spec) - _FIELDS[kind]
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {sorted(unknown)} for type {kind} "
            f"(allowed: {sorted(_FIELDS[kind])})"
        )
    if kind == "categorical":
        return ParamSpec(key, kind, choices=_choices(where, spec.get("choices")))
    return _numeric(key, where, kind, spec)


def _choices(where: str, choices: Any) -> tuple[Choice, ...]:
    if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
        raise ConfigError(f"{where}.choices must be a non-empty list, got {choices!r}")
    for choice in choices:
        if not (choice is None or isinstance(choice, bool | int | float | str)):
            raise ConfigError(f"{where}.choices: {choice!r} is not a scalar (str/int/float/bool)")
    return tuple(choices)


def _numeric(key: str, where: str, kind: str, spec: Mapping[str, Any]) -> ParamSpec:
    bounds = {name: _number(where, name, spec.get(name), kind) for name in ("low", "high")}
    low, high = bounds["low"], bounds["high"]
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    step = None if spec.get("step") is None else _number(where, "step", spec["step"], kind)
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: log scale needs low > 0, got {low}")
    if step is not None and (step <= 0 or (log and (kind == "float" or step != 1))):
        raise ConfigError(f"{where}.step must be > 0 and cannot be combined with log: true")
    return ParamSpec(key, kind, low=low, high=high, log=log, step=step)


def _number(where: str, name: str, value: Any, kind: str) -> float:
    if value is None:
        raise ConfigError(f"{where}.{name} is required for type {kind}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{name} must be a finite number, got {value!r}")
    if kind == "int" and float(value) != int(value):
        raise ConfigError(f"{where}.{name} must be an integer for type int, got {value!r}")
    return int(value) if kind == "int" else float(value)


def defaults_in_space(cfg: DictConfig, specs: Sequence[ParamSpec]) -> dict[str, Choice]:
    """The composed config's value at each searched key that the space can itself suggest.

    Enqueued as a study's first trial, so a sweep never ends below the defaults it started
    from on the validation carve (TPE's first random trials often do, in six dimensions).
    Keys whose default lies outside their range (or is absent) are left to the sampler."""
    values: dict[str, Choice] = {}
    for spec in specs:
        value = OmegaConf.select(cfg, spec.key.lstrip("+"), default=_ABSENT)
        if value is not _ABSENT and spec.contains(value):
            values[spec.key] = value
    return values


def suggest_overrides(
    trial: optuna.trial.BaseTrial, space: Mapping[str, Any] | DictConfig
) -> list[str]:
    """Sample every dimension of `space` for `trial`, as Hydra override strings."""
    return [override(spec.key, spec.suggest(trial)) for spec in parse_space(space)]


def params_to_overrides(params: Mapping[str, Any]) -> list[str]:
    """Override strings for a finished trial's `params` (keys are override paths)."""
    return [override(key, value) for key, value in params.items()]


def override(key: str, value: Any) -> str:
    """`key=value` in Hydra's override grammar (strings quoted unless plainly bare)."""
    return f"{key}={format_value(value)}"


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _BARE_STRING.match(text) and text.lower() not in _RESERVED:
        return text
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def epochs_upper_bound(specs: Sequence[ParamSpec], key: str) -> int | None:
    """The largest epoch count the space can ask for at `key` (None if `key` is not searched)."""
    for spec in specs:
        if spec.key.lstrip("+") == key:
            if spec.type == "categorical":
                numbers = [c for c in spec.choices if isinstance(c, int | float)]
                return int(max(numbers)) if numbers else None
            return int(spec.high) if spec.high is not None else None
    return None


def best_model_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved `model` section (with `_target_` first): a drop-in `conf/model/*.yaml`."""
    model = to_dict(cfg.model)
    if "_target_" not in model:
        raise ConfigError("the composed config has no model._target_")
    return {"_target_": model.pop("_target_"), **model}
