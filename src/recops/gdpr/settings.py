"""The `gdpr` config section as a typed object with absolute paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recops.config import resolve_path, shared_state_root
from recops.data.settings import FileMapping
from recops.errors import ConfigError
from recops.registry.settings import RegistrySettings
from recops.settings import build_group, convert, plain

RETRAIN_CHOICES = ("now", "next-cycle")
BENTOML_HOME_ENV = "BENTOML_HOME"


@dataclass(frozen=True)
class GdprSection:
    """`conf/gdpr/default.yaml` as written (the only home of its defaults)."""

    salt_file: Path
    erasure_list: Path
    retrain_request: Path
    audit_log: Path
    retrain: str
    derived: tuple[Path, ...]

    def __post_init__(self) -> None:
        if self.retrain not in RETRAIN_CHOICES:
            raise ConfigError(
                f"gdpr.retrain must be one of {RETRAIN_CHOICES}, got {self.retrain!r}"
            )


@dataclass(frozen=True)
class GdprSettings(GdprSection):
    """The `gdpr` section with absolute paths (state next to the registry) and what erasure
    needs from other groups."""

    root: Path
    duckdb: Path
    model_name: str
    user_column: str  # the user column of dropped event files (worker.file / data.columns)

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path) -> GdprSettings:
        g = build_group(GdprSection, cfg, "gdpr")
        state = shared_state_root(root)
        derived = [resolve_path(p, root) for p in g.derived]
        return cls(
            root=root,
            duckdb=resolve_path(str(cfg.paths.duckdb), root),
            salt_file=resolve_path(g.salt_file, state),
            erasure_list=resolve_path(g.erasure_list, state),
            retrain_request=resolve_path(g.retrain_request, state),
            audit_log=resolve_path(g.audit_log, state),
            retrain=g.retrain,
            derived=tuple([*derived, bentoml_home(root)]),
            model_name=RegistrySettings.from_config(cfg, root).model_name,
            user_column=_user_column(cfg),
        )


@dataclass(frozen=True)
class ServedAnswer:
    """What `export-user` needs of the `serve` group to show the user's current answer.

    The serving layer sits above this one, so these few keys are read here, each type-checked
    (`recops.settings.convert`), rather than through `recops.serving.config.ServeConfig`."""

    model_name: str
    alias: str
    k: int
    min_history: int
    precomputed: Path | None  # the precomputed table when `serve.precompute.enabled`

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path) -> ServedAnswer:
        serve = plain(OmegaConf.select(cfg, "serve"), "serve")
        if not isinstance(serve, dict):
            raise ConfigError("the config has no `serve` section")

        def read(path: str, hint: Any) -> Any:
            node: Any = serve
            for key in path.split("."):
                if not isinstance(node, dict) or key not in node:
                    raise ConfigError(f"serve.{path} is missing")
                node = node[key]
            return convert(node, hint, f"serve.{path}")

        enabled = read("precompute.enabled", bool)
        return cls(
            model_name=read("model_name", str),
            alias=read("alias", str),
            k=read("limits.k_default", int),
            min_history=read("min_history", int),
            precomputed=resolve_path(read("precompute.path", Path), root) if enabled else None,
        )


def bentoml_home(root: Path) -> Path:
    """`$BENTOML_HOME`, else `<project>/bentoml_home` (as `recops bento build` uses it)."""
    return Path(os.environ.get(BENTOML_HOME_ENV) or root / "bentoml_home")


def _user_column(cfg: DictConfig) -> str:
    for node in (FileMapping.from_config(cfg).columns, cfg.data.get("columns")):
        if node and node.get("user"):
            return str(node.get("user"))
    return "user_id"
