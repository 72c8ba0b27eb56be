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
