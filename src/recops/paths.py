"""Resolved paths and identities a stage needs, derived from the composed config.

A low module (no layer imports): the pipeline stages, the drift check, the worker and the
registry all use it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recops.config import config_hash, find_project_root, resolve_path


@dataclass(frozen=True)
class StagePaths:
    """Absolute locations of every stage input and output."""

    root: Path
    duckdb: Path
    snapshot_dir: Path
    features_dir: Path
    model_dir: Path
    run_file: Path
    reports_dir: Path

    @classmethod
    def from_config(cls, cfg: DictConfig) -> StagePaths:
        root = find_project_root()
        p = cfg.paths
        return cls(
            root=root,
            duckdb=resolve_path(p.duckdb, root),
            snapshot_dir=resolve_path(p.snapshot_dir, root),
            features_dir=resolve_path(p.features_dir, root),
            model_dir=resolve_path(p.model_dir, root),
            run_file=resolve_path(p.run_file, root),
            reports_dir=resolve_path(p.reports_dir, root),
        )

    def standalone(self, cfg: DictConfig) -> StagePaths:
        """Cache folders keyed by the config that produced them, so a standalone run never
        overwrites the DVC-tracked outputs (data, model, `reports/metrics.json`,
        `reports/registry.json`, plots) and reuses work when the inputs are the same."""
        cache = resolve_path(cfg.paths.cache_dir, self.root)
        data_key = config_hash(cfg.data)
        features_key = config_hash(cfg.data, cfg.features, cfg.split)
        model_key = f"{features_key}-{config_hash(cfg.model)}"
        return replace(
            self,
            snapshot_dir=cache / f"snapshot-{data_key}",
            features_dir=cache / f"features-{features_key}",
            model_dir=cache / f"model-{model_key}",
            run_file=cache / f"run-{model_key}.json",
            reports_dir=cache / f"reports-{model_key}",
        )


def dataset_key(data_cfg: DictConfig) -> str:
    """The dataset's name in the event store.

    Generated worlds (`key_by_config: true`) get a key per generator config, so changing the
    generator makes a new dataset instead of mixing two worlds; files accumulate under
    their `name` (re-ingesting the same rows adds nothing).
    """
    name = str(data_cfg.name)
    if data_cfg.get("key_by_config", False):
        return f"{name}-{config_hash(data_cfg.source)}"
    return name


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
