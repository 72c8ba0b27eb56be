"""Backups of a real project (DuckDB store, SQLite MLflow store and artifacts, audit) taken
while a worker cycle runs; verify, restore into a new folder, serve the same champion from it
with a real `bentoml serve`; a corrupted backup fails `verify` naming the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import PROJECT_ROOT
from .servers import bentoml_service, server_env
from .worlds import copy_project

pytestmark = pytest.mark.integration
SERVE = "poll_interval_s=1 sync_interval_s=0.2 workers=1 canary.enabled=false"


@dataclass
class Project:
    root: Path
    overrides: list[str]

    def env(self, root: Path | None = None) -> dict[str, str]:
        root = root or self.root
        env = server_env(
            root, MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}", RECOPS_ROOT=str(root)
        )
        env["PYTHONPATH"] = str(PROJECT_ROOT / "src")
        return env

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "recops.cli", *args]

    def cli(self, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
        extra = self.overrides if args[0] not in ("backup",) or args[1] == "create" else []
        return subprocess.run(
            [*self.cmd(*args), *extra],
            cwd=root or self.root,
            env=self.env(root),
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.fixture(scope="module")
def project(tiny_project_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A private copy of the tiny project (registered ALS champion)."""
    tiny = copy_project(tiny_project_template, tmp_path_factory.mktemp("backup") / "project")
    return Project(tiny.root, tiny.overrides)


def test_backup_during_a_worker_cycle_restores_and_serves_the_same_champion(
    project: Project, tmp_path: Path
) -> None:
    incoming = project.root / "data" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "week9.csv").write_text(
        "user_id,item_id,timestamp,event_type\n"
        + "".join(f"u{n:05d},i{n % 50:05d},{1709900000 + n},view\n" for n in range(300))
    )
    worker = subprocess.Popen(
        [*project.cmd("worker", "run", "--once"), *project.overrides],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        made = project.cli("backup", "create", "--to", str(tmp_path / "backups"), "--keep", "2")
        worker_out, _ = worker.communicate(timeout=600)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert made.returncode == 0, made.stdout + made.stderr
    assert worker.returncode == 0, worker_out
    backups = sorted((tmp_path / "backups").iterdir())
    assert len(backups) == 1
    backup = backups[0]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {"duckdb", "mlflow_db", "mlflow_artifacts", "reports"} <= set(manifest["components"])
    champion = manifest["champion"]["version"]

    checked = project.cli("backup", "verify", str(backup))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    restored = tmp_path / "restored"
    done = project.cli("backup", "restore", str(backup), "--into", str(restored))
    assert done.returncode == 0, done.stdout + done.stderr
    # the restored project must not need the original's artifacts
    shutil.move(project.root / "mlartifacts", tmp_path / "original-artifacts")
    try:
        audit = project.cli("registry", "audit", root=restored)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        restored_log = (restored / "reports/registry/audit.jsonl").read_text()
        original_log = (project.root / "reports/registry/audit.jsonl").read_text()
        assert restored_log and original_log.startswith(restored_log)
        assert "champion history" in audit.stdout
        if original_log == restored_log:  # the worker moved no alias after the backup
            shown = project.cli("registry", "audit")
            assert shown.stdout.replace(str(project.root), "ROOT") == audit.stdout.replace(
                str(restored), "ROOT"
            )
        assert_serves(restored, project.env(restored), champion, tmp_path)
    finally:
        shutil.move(tmp_path / "original-artifacts", project.root / "mlartifacts")

    # --keep 2: a third backup removes the oldest
    for _ in range(2):
        again = project.cli("backup", "create", "--to", str(tmp_path / "backups"), "--keep", "2")
        assert again.returncode == 0, again.stdout + again.stderr
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert len(kept) == 2 and backup.name not in kept


def assert_serves(root: Path, env: dict[str, str], version: str, tmp: Path) -> None:
    env = {**env, "RECOPS_SERVE_OVERRIDES": SERVE}
    log = tmp / "restored-serve.log"
    with bentoml_service(["service:RecOps"], root / "bentos", env, log, timeout=90) as (_, url):
        info = httpx.get(f"{url}/model_info", timeout=10).json()
        assert info["version"] == version and info["model_type"] == "als", info


def test_a_corrupted_backup_fails_verify_naming_the_file(project: Project, tmp_path: Path) -> None:
    made = project.cli("backup", "create", "--to", str(tmp_path))
    assert made.returncode == 0, made.stdout + made.stderr
    backup = next(tmp_path.iterdir())
    users = next((backup / "files" / "mlartifacts").rglob("users.parquet"))
    data = bytearray(users.read_bytes())
    data[len(data) // 2] ^= 0xFF
    users.write_bytes(bytes(data))
    with (backup / "files" / "mlflow.db").open("r+b") as handle:
        handle.seek(4096 + 100)
        handle.write(b"\x00garbage\x00" * 50)
    checked = project.cli("backup", "verify", str(backup))
    out = checked.stdout + checked.stderr
    assert checked.returncode == 1, out
    assert "users.parquet: checksum mismatch" in out and "files/mlflow.db" in out, out
    refused = project.cli("backup", "restore", str(backup), "--into", str(tmp_path / "r"))
    assert refused.returncode == 1 and "not sound" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
