"""Packaged mode: import a registered version into the BentoML model store and build a bento
that serves it with no registry at run time.

The BentoML model holds the saved `Recommender` (`recommender/`), what it is (`serving.json`:
registered name, version, alias, run, snapshot) and, when enabled, the precomputed top-k table.
The bento is built from a staging folder: `bentos/service.py` and `bentofile.yaml`, a snapshot of
the serving config (`serve_config.json`, mode forced to `packaged`) and a copy of the `recops`
package, so the bento (and an image built with `bentoml containerize`) carries the code it was
built with.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recops.config import find_project_root, resolve_path
from recops.errors import RegistryError
from recops.models.recommender import Recommender
from recops.serving import precompute
from recops.serving.config import SNAPSHOT_FILE, ServeConfig
from recops.serving.loader import (
    PACKAGED_PRECOMPUTED,
    PACKAGED_RECOMMENDER,
    PACKAGED_REF,
    RegistrySource,
)
from recops.serving.refs import ModelRef

log = logging.getLogger(__name__)
BENTOML_HOME_ENV = "BENTOML_HOME"
BENTOS_DIR = "bentos"
BENTOFILE = "bentofile.yaml"
SERVICE_FILE = "service.py"


def use_bentoml_home(root: Path | None = None) -> Path:
    """`$BENTOML_HOME`, defaulting to `<project>/bentoml_home` (set before BentoML reads it)."""
    home = os.environ.get(BENTOML_HOME_ENV)
    if not home:
        home = str((root or find_project_root()) / "bentoml_home")
        os.environ[BENTOML_HOME_ENV] = home
    return Path(home)


@dataclass(frozen=True)
class Imported:
    tag: str
    ref: ModelRef
    reused: bool
    coverage: dict[str, Any] | None


def _stored_ref(model: Any) -> dict[str, Any]:
    try:
        return dict(json.loads((Path(model.path) / PACKAGED_REF).read_text()))
    except (OSError, ValueError):
        return {}


def import_model(
    cfg: ServeConfig, alias: str | None = None, with_precompute: bool = True
) -> Imported:
    """Import the version `alias` (default: the champion) points at into the model store.

    A stored model of the same registered version and run is reused.
    """
    import bentoml

    source = RegistrySource(cfg.model_name)
    alias = alias or cfg.alias
    ref = source.resolve(alias)
    if ref is None:
        raise RegistryError(
            f"{cfg.model_name} has no alias {alias!r} in the registry at {source.tracking_uri}: "
            "train and register a model first (`make run` or `recops train`)"
        )
    try:
        stored_models = bentoml.models.list(cfg.bento_model)
    except bentoml.exceptions.NotFound:
        stored_models = []
    for model in stored_models:
        stored = _stored_ref(model)
        if stored.get("version") == ref.version and stored.get("run_id") == ref.run_id:
            log.info(
                "model store already holds %s v%s as %s", ref.model_name, ref.version, model.tag
            )
            return Imported(str(model.tag), ModelRef.from_dict(stored), True, None)
    recommender = source.load(ref)
    coverage = None
    labels = {"registered_model": ref.model_name, "version": str(ref.version), "alias": alias}
    metadata = {**{k: v for k, v in ref.to_dict().items() if v is not None}}
    with bentoml.models.create(cfg.bento_model, labels=labels, metadata=metadata) as model:
        folder = Path(model.path)
        recommender.save(folder / PACKAGED_RECOMMENDER)
        info = {**ref.to_dict(), "imported_at": datetime.now(UTC).isoformat(timespec="seconds")}
        (folder / PACKAGED_REF).write_text(json.dumps(info, indent=2))
        if with_precompute and cfg.precompute.enabled:
            coverage = write_table(recommender, folder / PACKAGED_PRECOMPUTED, ref, cfg)
        tag = str(model.tag)
    return Imported(tag, ref, False, coverage)


def precompute_meta(ref: ModelRef, cfg: ServeConfig) -> dict[str, Any]:
    return {
        "model_name": ref.model_name,
        "version": ref.version,
        "alias": ref.alias,
        "run_id": ref.run_id,
        "k": cfg.precompute.k,
        "min_history": cfg.min_history,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def stage_build_context(cfg: ServeConfig, root: Path, target: Path) -> Path:
    """A build folder: service, bentofile, config snapshot (packaged mode) and `recops/`."""
    bentos = root / BENTOS_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in (SERVICE_FILE, BENTOFILE):
        shutil.copy2(bentos / name, target / name)
    from recops.serving.image import configure_bento_context

    configure_bento_context(cfg, target)  # base image + Dockerfile template of the image
    snapshot = cfg.replace(mode="packaged", state_dir=None).to_dict()
    (target / SNAPSHOT_FILE).write_text(json.dumps(snapshot, indent=2))
    import recops

    package = Path(recops.__file__).resolve().parent
    shutil.copytree(
        package, target / "recops", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


def build_bento(cfg: ServeConfig, root: Path | None = None) -> str:
    """Build the bento from a staged context; returns its tag (`recops:<version>`)."""
    import bentoml

    root = root or find_project_root()
    home = use_bentoml_home(root)
    staging = Path(tempfile.mkdtemp(prefix="recops-bento-", dir=home if home.is_dir() else None))
    try:
        stage_build_context(cfg, root, staging / "src")
        from recops.serving.container import working_directory

        with working_directory(staging):  # BentoML checks the Dockerfile template's path
            bento = bentoml.bentos.build_bentofile(
                str(staging / "src" / BENTOFILE), build_ctx=str(staging / "src")
            )
        return str(bento.tag)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_precomputed(cfg: ServeConfig, alias: str | None = None) -> dict[str, Any]:
    """`recops bento precompute`: the table for the version `alias` points at, at
    `serve.precompute.path`; returns where, for which version, and the user coverage."""
    source = RegistrySource(cfg.model_name)
    ref = source.resolve(alias or cfg.alias)
    if ref is None:
        raise RegistryError(f"{cfg.model_name} has no alias {alias or cfg.alias!r}")
    recommender = source.load(ref)
    path = resolve_path(cfg.precompute.path)
    coverage = write_table(recommender, path, ref, cfg)
    return {"path": str(path), "model": ref.key, "k": cfg.precompute.k, **coverage}


def write_table(
    recommender: Recommender, path: Path, ref: ModelRef, cfg: ServeConfig
) -> dict[str, Any]:
    """The precomputed table of `ref` at `path`, in chunks (intervals if configured and the
    model gives them); returns the coverage."""
    level = None
    if cfg.uncertainty.precompute and recommender.model.supports_uncertainty:
        level = cfg.uncertainty.level
    meta = precompute_meta(ref, cfg)
    return precompute.write_chunked(
        recommender, path, meta, cfg.min_history, cfg.precompute.k, level
    )
