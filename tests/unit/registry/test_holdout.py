"""Finding a version's holdout again by the hash of its split statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from recops.errors import RegistryError
from recops.registry.holdout import features_hash, manifest_hash, search_folders


def test_hash_is_the_same_for_stats_in_memory_and_in_the_manifest(tmp_path: Path) -> None:
    stats = {"n_users": np.int64(5), "split": {"type": "time", "fraction": 0.2}, "ks": (1, 2)}
    (tmp_path / "manifest.json").write_text(json.dumps(stats, indent=2, default=str))
    assert manifest_hash(tmp_path) == features_hash(stats)
    assert features_hash({**stats, "n_users": 6}) != features_hash(stats)
    assert manifest_hash(tmp_path / "missing") is None


def test_search_order_tag_then_dvc_folder_then_caches(tmp_path: Path) -> None:
    for name in ("features-b", "features-a", "snapshot-x"):
        (tmp_path / "cache" / name).mkdir(parents=True)
    cfg = OmegaConf.create({"paths": {"features_dir": "data/features", "cache_dir": "cache"}})
    folders = search_folders(cfg, str(tmp_path / "cache" / "features-b"), tmp_path)
    assert folders == [
        tmp_path / "cache" / "features-b",
        tmp_path / "data" / "features",
        tmp_path / "cache" / "features-a",
    ]


def test_missing_holdout_names_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from recops.registry import holdout

    tags = {holdout.FEATURES_HASH_TAG: "abcdef0123456789"}
    run = SimpleNamespace(data=SimpleNamespace(tags=tags))
    client = SimpleNamespace(get_run=lambda run_id: run)
    cfg = OmegaConf.create({"paths": {"features_dir": "data/features", "cache_dir": "cache"}})
    with pytest.raises(RegistryError, match=r"features abcdef01\) is not on this machine"):
        holdout.locate_holdout(client, cfg, "r1", tmp_path)  # type: ignore[arg-type]
