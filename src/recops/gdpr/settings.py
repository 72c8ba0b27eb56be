"""The `gdpr` config section as absolute paths (defaults for a config composed without it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from recops.config import resolve_path, shared_state_root
from recops.errors import ConfigError

RETRAIN_CHOICES = ("now", "next-cycle")
BENTOML_HOME_ENV = "BENTOML_HOME"


@dataclass(frozen=True)
class GdprSettings:
    root: Path
    duckdb: Path
    salt_file: Path
    erasure_list: Path
    retrain_request: Path
    audit_log: Path
    retrain: str
    derived: tuple[Path, ...]
    model_name: str
    user_column: str  # the user column of dropped event files (worker.file / data.columns)

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path) -> GdprSettings:
        g = cfg.get("gdpr") or {}
        data_dir = str(cfg.paths.data_dir)
        state = shared_state_root(root)
        retrain = str(g.get("retrain", "next-cycle"))
        if retrain not in RETRAIN_CHOICES:
            raise ConfigError(f"gdpr.retrain must be one of {RETRAIN_CHOICES}, got {retrain!r}")
        derived = [resolve_path(str(p), root) for p in g.get("derived") or ()]
        return cls(
            root=root,
            duckdb=resolve_path(str(cfg.paths.duckdb), root),
            salt_file=resolve_path(str(g.get("salt_file", f"{data_dir}/gdpr/salt")), state),
            erasure_list=resolve_path(
                str(g.get("erasure_list", f"{data_dir}/gdpr/erasures.json")), state
            ),
            retrain_request=resolve_path(
                str(g.get("retrain_request", f"{data_dir}/gdpr/retrain.json")), state
            ),
            audit_log=resolve_path(
                str(g.get("audit_log", f"{cfg.paths.reports_dir}/gdpr/audit.jsonl")), state
            ),
            retrain=retrain,
            derived=tuple([*derived, bentoml_home(root)]),
            model_name=str(cfg.registry.model_name),
            user_column=_user_column(cfg),
        )


def bentoml_home(root: Path) -> Path:
    """`$BENTOML_HOME`, else `<project>/bentoml_home` (as `recops bento build` uses it)."""
    return Path(os.environ.get(BENTOML_HOME_ENV) or root / "bentoml_home")


def _user_column(cfg: DictConfig) -> str:
    for node in (cfg.get("worker", {}).get("file", {}).get("columns"), cfg.data.get("columns")):
        if node and node.get("user"):
            return str(node.get("user"))
    return "user_id"
