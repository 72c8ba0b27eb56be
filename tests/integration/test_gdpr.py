"""GDPR export and erasure on a real project in a temp folder: DuckDB store, standalone
snapshot/features/model, a dropped file ingested by the worker code, a registered ALS version
in a real MLflow store, the precomputed table, and a real `bentoml serve` following it live."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from recops.config import compose, to_dict
from recops.data.store import EventStore
from recops.gdpr.erase import read_audit
from recops.gdpr.files import holds_id
from recops.monitoring.stage import file_mapping
from recops.pipeline.context import dataset_key
from recops.pipeline.stages import run_chain
from recops.serving.bento import write_precomputed
from recops.serving.config import ServeConfig
from recops.tracking.model_files import load_registered_recommender
from recops.worker import incoming

from .conftest import PROJECT_ROOT, TINY_WORLD
from .servers import bentoml_service, server_env
from .worlds import NAME, TINY_ALS, copy_project, served_users, tracking

pytestmark = pytest.mark.integration
SERVE = "poll_interval_s=1 sync_interval_s=0.2 workers=1 canary.enabled=false cache.warm_users=50"


@dataclass
class Project:
    root: Path
    uri: str
    user: str  # model-served, in events, quarantine, snapshot, features, v1, precompute
    other: str  # another model-served user: must keep personalised answers
    overrides: list[str]

    def env(self) -> dict[str, str]:
        env = server_env(self.root, MLFLOW_TRACKING_URI=self.uri, RECOPS_ROOT=str(self.root))
        env["PYTHONPATH"] = str(PROJECT_ROOT / "src")
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "recops.cli", *args, *self.overrides]
        return subprocess.run(
            cmd, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=300
        )


def owned_files(root: Path) -> list[Path]:
    """Every file of the project RecOps wrote (not the copied config and service code)."""
    copied = {"conf", "bentos"}
    files = [p for p in root.rglob("*") if p.is_file()]
    return [p for p in files if not copied & set(p.relative_to(root).parts)]


@pytest.fixture(scope="module")
def project(
    tiny_project_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """A copy of the tiny project (registered ALS v1), a dropped file ingested by the worker's
    code, and the precomputed table."""
    tiny = copy_project(tiny_project_template, tmp_path_factory.mktemp("gdpr") / "project")
    served = served_users(tiny.uri, tiny.root)
    user, other = served[0], served[1]
    with tracking(tiny.uri, tiny.root), pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(tiny.root / "bentoml_home"))
        cfg = compose([*tiny.overrides, *(f"{k}={v}" for k, v in TINY_ALS.items())])
        rec = load_registered_recommender(MlflowClient(tiny.uri), NAME, "1")
        drop_file(tiny.root, cfg, user, str(rec.items.external_ids[0]))
        write_precomputed(ServeConfig.from_mapping(to_dict(cfg.serve)))
    yield Project(tiny.root, tiny.uri, user, other, tiny.overrides)


def drop_file(root: Path, cfg: Any, user: str, item: str) -> None:
    """A file dropped in the worker's folder: one good event and one quarantined row of the
    user (unparseable timestamp), ingested and moved to processed/ by the worker's code."""
    folder = root / "data" / "incoming"
    folder.mkdir(parents=True)
    path = folder / "late-events.csv"
    path.write_text(
        "user_id,item_id,timestamp,event_type\n"
        f"{user},{item},1700000000,view\n"
        f"{user},{item},not-a-time,view\n"
        f"someone-else,{item},1700000001,view\n"
    )
    with EventStore(root / "data" / "recops.duckdb") as store:
        result = incoming.ingest_file(store, dataset_key(cfg.data), path, file_mapping(cfg), set())
        assert result.status == "ingested" and result.n_quarantined == 1
        incoming.move_done(path, result, folder / "processed", folder / "rejected")


def recommend(url: str, user: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/recommend", json={"user_id": user, "k": 5}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def live(project: Project) -> Iterator[str]:
    env = {**project.env(), "RECOPS_SERVE_OVERRIDES": SERVE}
    log = project.root.parent / "serve.log"
    with bentoml_service(["service:RecOps"], PROJECT_ROOT / "bentos", env, log) as (_, url):
        yield url


def test_export_then_delete_reaches_every_store(project: Project, live: str) -> None:
    user = project.user
    # export: the store rows with their origin, the version, the precomputed answer
    out = project.root.parent / "export.json"
    done = project.cli("gdpr", "export-user", "--user-id", user, "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(out.read_text())
    assert document["user_id"] == user and not document["erased"]
    events, quarantined = document["store"]["events"], document["store"]["quarantine"]
    assert len(events) > 5 and any(e["origin"].endswith("late-events.csv") for e in events)
    assert len(quarantined) == 1 and quarantined[0]["origin"].endswith("late-events.csv")
    assert [(v["version"], v["model_type"]) for v in document["model_versions"]] == [("1", "als")]
    assert document["recommendations"]["source"] == "precomputed"
    assert "trained into: v1 (als)" in done.stdout + done.stderr
    before = [p for p in owned_files(project.root) if holds_id(p, user)]
    names = {p.name for p in before}
    assert {"precomputed.parquet", "users.parquet", "late-events.csv"} <= names, names
    assert recommend(live, user)["source"] == "model"

    done = project.cli("gdpr", "delete-user", "--user-id", user, "--reason", "art. 17 request")
    assert done.returncode == 0, done.stdout + done.stderr
    # no file RecOps owns holds the id any more (bytes)
    left = [str(p) for p in owned_files(project.root) if holds_id(p, user)]
    assert left == []
    # the live service answers the user from the fallback within a poll, others unchanged
    deadline = time.monotonic() + 5
    while recommend(live, user)["source"] != "fallback":
        assert time.monotonic() < deadline, "the service still personalises an erased user"
        time.sleep(0.2)
    assert recommend(live, project.other)["source"] == "model"
    # the audit has the erasure, hashed
    audit_path = project.root / "reports" / "gdpr" / "audit.jsonl"
    assert user not in audit_path.read_text()
    record = read_audit(audit_path)[-1]
    assert record["user_hash"].startswith("sha256:") and not record["repeat"]
    assert record["store"]["events"] == len(events) and record["store"]["quarantine"] == 1
    assert record["versions"][0]["version"] == "1" and record["versions"][0]["redacted"]
    assert record["versions"][0]["erasure"] == "redact" and record["retrain"] is None
    # the redacted version still loads and serves everyone else
    client = MlflowClient(tracking_uri=project.uri)
    assert "recops.gdpr.erased" in client.get_model_version(NAME, "1").tags
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", project.uri)
        mlflow.set_tracking_uri(project.uri)
        redacted = load_registered_recommender(client, NAME, "1")  # checksums verified
        mlflow.set_tracking_uri(None)
    assert user not in redacted.users and project.other in redacted.users
    with EventStore(project.root / "data" / "recops.duckdb") as store:
        assert all(len(f) == 0 for f in store.user_rows(user).values())


def _compared(path: Path) -> bool:
    """Files a repeated erasure must leave as they are: not the erasure's own records, and not
    the live service's own state (its last-good copy and statistics, refreshed at any poll)."""
    skip = {"gdpr", "last_good", "prometheus_multiproc_dir"}  # the service's own state
    return not skip & set(path.parts)


def test_delete_is_idempotent(project: Project) -> None:
    snapshot = {p: p.read_bytes() for p in owned_files(project.root) if _compared(p)}
    done = project.cli("gdpr", "delete-user", "--user-id", project.user)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already erased" in done.stdout + done.stderr
    after = {p: p.read_bytes() for p in owned_files(project.root) if _compared(p)}
    changed = [str(p) for p in after if snapshot.get(p) != after[p] and p.suffix != ".db"]
    assert changed == []
    record = read_audit(project.root / "reports" / "gdpr" / "audit.jsonl")[-1]
    assert record["repeat"] and sum(record["store"].values()) == 0 and not record["files"]


def test_unknown_user_is_a_clear_message(project: Project) -> None:
    done = project.cli("gdpr", "delete-user", "--user-id", "never-seen-user")
    assert done.returncode == 1
    assert "no data about user 'never-seen-user'" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unredactable_version_is_retrained_by_the_worker(tmp_path: Path) -> None:
    """EASE learns item-item weights from every user: the erasure redacts its rows, requests a
    retrain, and `--retrain now` runs the worker cycle that trains a version without them."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    overrides = [f"{k}={v}" for k, v in TINY_WORLD.items()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("RECOPS_ROOT", str(root))
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mlflow.set_tracking_uri(uri)
        assert run_chain(compose([*overrides, "model=ease"]))["registry"]["promoted"]
        rec = load_registered_recommender(MlflowClient(uri), NAME, "1")
        mlflow.set_tracking_uri(None)
    user = str(rec.users.external_ids[0])
    project = Project(root, uri, user, "", [*overrides, "model=ease"])
    done = project.cli("gdpr", "delete-user", "--user-id", user, "--retrain", "now")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "retrain requested" in out and "full (GDPR erasure" in out and ": v2 ->" in out, out
    record = read_audit(root / "reports" / "gdpr" / "audit.jsonl")[-1]
    assert record["versions"][0]["erasure"] == "retrain" and record["retrain"]["versions"] == ["1"]
    assert not (root / "data" / "gdpr" / "retrain.json").exists()  # honoured and cleared
    client = MlflowClient(tracking_uri=uri)
    assert "recops.gdpr.retrain" in client.get_model_version(NAME, "1").tags
    retrained = load_registered_recommender(client, NAME, "2")
    assert user not in retrained.users and len(retrained.users) > 100
