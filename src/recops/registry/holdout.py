"""The holdout a version was trained against, found again for re-evaluation.

A run records its split statistics (`features/split_stats.json`, the same content as the
features folder's `manifest.json`) and, since the lifecycle commands, two tags:
`recops.features_hash` (a hash of those statistics) and `recops.features_dir`. The holdout is
the first features folder whose manifest hashes to the run's features hash, looked for in:
the tagged folder, the configured `paths.features_dir` (the DVC one) and every standalone
cache folder `paths.cache_dir/features-*`. Matching on content, not on the path, keeps this
right when a folder was rebuilt from other data (its hash changes) or a run came from a
`dvc exp run` temp copy that is gone (the same features exist elsewhere).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from recops.config import resolve_path
from recops.errors import RegistryError
from recops.features.dataset import SplitData

FEATURES_HASH_TAG = "recops.features_hash"
FEATURES_DIR_TAG = "recops.features_dir"
STATS_ARTIFACT = "features/split_stats.json"
MANIFEST = "manifest.json"


def features_hash(stats: dict[str, Any]) -> str:
    """Stable hash of split statistics, equal for the in-memory stats and their manifest."""
    normal = json.loads(json.dumps(stats, default=str))
    blob = json.dumps(normal, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def manifest_hash(folder: Path) -> str | None:
    try:
        stats = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return features_hash(stats) if isinstance(stats, dict) else None


@dataclass
class Holdout:
    split: SplitData
    folder: Path
    hash: str

    @property
    def label(self) -> str:
        return f"the candidate's holdout (features {self.hash[:8]})"


def expected_hash(client: MlflowClient, run_id: str) -> str:
    """The features hash of a run: its tag, else the hash of its logged split statistics."""
    tags = client.get_run(run_id).data.tags
    if tags.get(FEATURES_HASH_TAG):
        return str(tags[FEATURES_HASH_TAG])
    try:
        stats = mlflow.artifacts.load_dict(f"runs:/{run_id}/{STATS_ARTIFACT}")
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"run {run_id} records no features hash and no {STATS_ARTIFACT}: "
            "its holdout cannot be identified"
        ) from exc
    return features_hash(stats)


def search_folders(cfg: DictConfig, tagged: str | None, root: Path) -> list[Path]:
    """Where a holdout may be: the tagged folder, the DVC features folder, the caches."""
    folders = [Path(tagged)] if tagged else []
    folders.append(resolve_path(str(cfg.paths.features_dir), root))
    cache = resolve_path(str(cfg.paths.cache_dir), root)
    if cache.is_dir():
        folders.extend(sorted(cache.glob("features-*")))
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def locate_holdout(client: MlflowClient, cfg: DictConfig, run_id: str, root: Path) -> Holdout:
    """The features folder of `run_id`, loaded (RegistryError naming where it looked)."""
    wanted = expected_hash(client, run_id)
    tagged = client.get_run(run_id).data.tags.get(FEATURES_DIR_TAG)
    folders = search_folders(cfg, tagged, root)
    for folder in folders:
        if manifest_hash(folder) == wanted:
            return Holdout(SplitData.load(folder, with_events=False), folder, wanted)
    looked = ", ".join(str(f) for f in folders) or "nowhere"
    raise RegistryError(
        f"the holdout of run {run_id} (features {wanted[:8]}) is not on this machine "
        f"(looked in {looked}); rebuild it with the config the run was trained with"
    )
