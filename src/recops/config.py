"""Project root discovery, Hydra composition and config helpers shared by the CLI and stages."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from recops.errors import ConfigError

ROOT_ENV = "RECOPS_ROOT"
_DVC_TEMP_MARKER = (".dvc", "tmp", "exps")


def find_project_root(start: Path | None = None) -> Path:
    """The folder holding `conf/config.yaml`: `$RECOPS_ROOT`, else the nearest ancestor of cwd."""
    if env := os.environ.get(ROOT_ENV):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / "config.yaml").is_file():
            return folder
    raise ConfigError(f"no conf/config.yaml in {here} or any parent folder; set ${ROOT_ENV}")


def shared_state_root(root: Path | None = None) -> Path:
    """Where state shared by all runs lives (the MLflow store).

    `dvc exp run --temp/--queue` runs stages in a copy under `<repo>/.dvc/tmp/exps/...`; state
    such as the MLflow database must stay in the real repository or each experiment would
    write to a throw-away store.
    """
    root = (root or find_project_root()).resolve()
    parts = root.parts
    for i in range(len(parts) - len(_DVC_TEMP_MARKER)):
        if parts[i : i + len(_DVC_TEMP_MARKER)] == _DVC_TEMP_MARKER:
            return Path(*parts[:i])
    return root


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose `conf/` like `python -m pipelines.train` would, with Hydra overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    conf_dir = find_project_root() / "conf"
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    return cfg


def resolve_path(path: str | os.PathLike[str], root: Path | None = None) -> Path:
    """Absolute path for a config path relative to the project root."""
    p = Path(path)
    return p if p.is_absolute() else (root or find_project_root()) / p


def flatten(cfg: DictConfig | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config into dotted keys (`model.factors`), lists kept as JSON."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    return dict(_flatten_items(container, prefix))


def _flatten_items(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _flatten_items(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list | tuple | ListConfig):
        yield prefix, json.dumps(list(node))
    else:
        yield prefix, node


def config_hash(*sections: Any) -> str:
    """Short stable hash of config sections (for cache folders and identities)."""
    payload = [
        OmegaConf.to_container(s, resolve=True) if isinstance(s, DictConfig | ListConfig) else s
        for s in sections
    ]
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    """A plain, resolved dict of a config node."""
    result = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(result, dict):
        raise ConfigError(f"expected a mapping, got {type(result).__name__}")
    return {str(k): v for k, v in result.items()}


# -- validation of a composed config, before any work or MLflow logging ------------------------

#: Integer hyperparameters that may be 0 or negative (seeds, verbosity).
_FREE_INTS = ("seed", "random_state", "verbose")


def validate_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` (one line naming the key and value) for a config that cannot work:
    missing mandatory values (`???`), bad `eval.ks`, `split.test_fraction` outside (0, 1), and
    model hyperparameters of the wrong type or sign (checked against the model constructor's
    defaults: a count such as `factors` must be an integer >= 1, a positive float >= 0)."""
    missing = sorted(_missing_keys(cfg))
    if missing:
        key = missing[0]
        raise ConfigError(f"{key} is required but not set: add `{key}=...` to the command")
    _check_ks(cfg)
    fraction = OmegaConf.select(cfg, "split.test_fraction", default=None)
    if fraction is not None and not (
        isinstance(fraction, int | float) and not isinstance(fraction, bool) and 0 < fraction < 1
    ):
        raise ConfigError(f"split.test_fraction={fraction!r}: must be a number between 0 and 1")
    if OmegaConf.select(cfg, "model._target_", default=None):
        _check_model(cfg.model)


def _missing_keys(node: DictConfig | ListConfig, prefix: str = "") -> Iterator[str]:
    """Dotted keys whose value is `???` (interpolations pointing at them are not resolved)."""
    keys: list[Any] = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    for key in keys:
        path = f"{prefix}.{key!s}" if prefix else str(key)
        if OmegaConf.is_missing(node, key):
            yield path
            continue
        child = node._get_node(key)  # no resolution: `${data.path}` must not raise here
        if isinstance(child, DictConfig | ListConfig) and not child._is_interpolation():
            yield from _missing_keys(child, path)


def _check_ks(cfg: DictConfig) -> None:
    ks = OmegaConf.select(cfg, "eval.ks", default=None)
    if ks is None:
        return
    values = list(ks) if isinstance(ks, ListConfig | list | tuple) else [ks]
    bad = [k for k in values if isinstance(k, bool) or not isinstance(k, int) or k < 1]
    if not values or bad:
        raise ConfigError(f"eval.ks={_show(ks)}: must be a non-empty list of integers >= 1")


def _check_model(model_cfg: DictConfig) -> None:
    import inspect

    from hydra.utils import get_class

    target = str(model_cfg._target_)
    try:
        cls = get_class(target)
    except Exception as exc:
        raise ConfigError(f"model._target_={target!r} cannot be imported ({exc})") from exc
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    for raw_key, value in model_cfg.items():
        key = str(raw_key)
        if key in _FREE_INTS:
            continue
        problem = _bad_number(defaults.get(key), value)
        if problem:
            raise ConfigError(f"model.{key}={_show(value)}: must be {problem}")


def _bad_number(default: Any, value: Any) -> str | None:
    """What `value` must be, given a constructor default, when it is not (else None)."""
    if isinstance(default, bool) or default is None or isinstance(value, DictConfig | ListConfig):
        return None
    if isinstance(default, int) and default > 0:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else "an integer >= 1"
    if isinstance(default, float) and default >= 0:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        return None if ok else "a number >= 0"
    return None


def _show(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        return json.dumps(OmegaConf.to_container(value, resolve=True))
    return repr(value) if isinstance(value, str) else str(value)
