"""The one typed-settings builder: a config group (a `conf/<group>/default.yaml` node, composed)
becomes a frozen dataclass, strictly.

`build(Schema, cfg.registry, "registry")` checks every key against the dataclass's fields:
an unknown key, a missing key (a field without a Python default) or a value of the wrong type
is a `ConfigError` of one line naming the key path (`registry.smoke.k`) and the bad value.
Supported field types: `int`, `float` (an int is accepted), `bool`, `str`, `Path` (from a
string), `X | None`, `Literal[...]`, `tuple[X, ...]` (from a list), `dict[str, X]`, `Any`
and nested dataclasses (a mapping). A dataclass's `__post_init__` may raise `ConfigError` for
rules that span fields.

Defaults live in `conf/` only: a settings dataclass declares no default that its conf group
also sets (tests/unit/test_settings.py builds every schema from the composed `conf/` and
checks that the key sets match exactly).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from omegaconf import DictConfig, ListConfig, OmegaConf

from recops.errors import ConfigError

T = TypeVar("T")
_NAMES: dict[Any, str] = {int: "int", float: "float", bool: "bool", str: "str", Path: "str"}


def build(cls: type[T], values: Any, where: str) -> T:
    """`cls` from a mapping or DictConfig (interpolations resolved), checked key by key."""
    values = plain(values, where)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {_show(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {unknown} (known: {sorted(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in values:
            kwargs[name] = convert(values[name], hints[name], f"{where}.{name}")
        elif not _has_default(f):
            group = where.split(".")[0].split("[")[0]
            raise ConfigError(
                f"{where}.{name} is missing (conf/{group}/ sets it; "
                "a params.yaml older than conf/? regenerate it: `recops params`)"
            )
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def build_group(cls: type[T], cfg: Any, group: str) -> T:
    """`cls` from the root config's group `group` (a dotted path such as `worker.file`)."""
    return build(cls, _group(cfg, group), group)


def build_view(cls: type[T], cfg: Any, group: str) -> T:
    """`cls` from only the keys it declares of the root config's group `group`, each checked
    as `build` checks it; the group's other keys are its own settings class's business.

    For a lower layer that needs a few keys of a section whose settings class sits in a layer
    it may not import (a backup reads `gdpr.salt_file` and `worker.work_dir`)."""
    values = plain(_group(cfg, group), group)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{group} must be a mapping, got {_show(values)}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return build(cls, {k: v for k, v in values.items() if k in names}, group)


def _group(cfg: Any, group: str) -> Any:
    node = OmegaConf.select(cfg, group) if isinstance(cfg, DictConfig) else None
    if node is None:
        raise ConfigError(
            f"the config has no `{group}` section (a params.yaml older than conf/? "
            "regenerate it: `recops params`)"
        )
    return node


def plain(values: Any, where: str = "config") -> Any:
    """A DictConfig/ListConfig as plain containers (resolved); anything else unchanged."""
    if isinstance(values, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(values, resolve=True)
        except Exception as exc:  # an interpolation to a missing key
            raise ConfigError(f"{where}: {exc}".splitlines()[0]) from exc
    return values


def convert(value: Any, hint: Any, where: str) -> Any:
    """`value` as the annotated type `hint`, or a ConfigError naming `where`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        return _union(value, args, where)
    if value is None:
        raise ConfigError(f"{where} must not be null")
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be one of {list(args)}, got {_show(value)}")
    if origin is tuple:
        return _sequence(value, args[0], where)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {_show(value)}")
        return {str(k): convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, where)
    return _scalar(value, hint, where)


def _union(value: Any, args: tuple[Any, ...], where: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where} must not be null")
    options = [a for a in args if a is not type(None)]
    for option in options:
        try:
            return convert(value, option, where)
        except ConfigError:
            continue
    names = " or ".join(_name(a) for a in options)
    nullable = " (or null)" if type(None) in args else ""
    raise ConfigError(f"{where} must be {names}{nullable}, got {_show(value)}")


def _sequence(value: Any, item: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of {_name(item)}, got {_show(value)}")
    return tuple(convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is Path:
        if isinstance(value, str | Path):
            return Path(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint in (int, str, bool):
        if isinstance(value, hint) and (hint is bool or not isinstance(value, bool)):
            return value
    else:
        raise TypeError(f"{where}: unsupported settings type {hint!r}")
    raise ConfigError(f"{where} must be {_name(hint)}, got {_show(value)}")


def _name(hint: Any) -> str:
    """`int`, `list of str`, `one of ['a', 'b']`, `mapping` (the wording of the errors)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"list of {_name(typing.get_args(hint)[0])}"
    if origin is Literal:
        return f"one of {list(typing.get_args(hint))}"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "mapping"
    return _NAMES.get(hint, str(hint))


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def field_paths(cls: type, where: str) -> Iterator[str]:
    """Every key path a schema declares (`registry.smoke.k`), nested dataclasses walked."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{where}.{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            yield from field_paths(hint, path)
        else:
            yield path


def key_paths(values: Any, where: str, schema: type) -> Iterator[str]:
    """Every key path of a config node, descending where `schema` has a nested dataclass."""
    values = plain(values, where)
    hints = typing.get_type_hints(schema)
    for key, value in values.items():
        path = f"{where}.{key}"
        hint = hints.get(str(key))
        if dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, Mapping):
            yield from key_paths(value, path, hint)
        else:
            yield path
