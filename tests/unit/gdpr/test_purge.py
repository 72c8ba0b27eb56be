"""`recops gdpr purge` on a real DVC repository: after an erasure rewrote a DVC-tracked output,
the old copy in DVC's cache is collected; interrupted rewrites are cleaned up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recops.gdpr import files
from recops.gdpr.purge import purge
from recops.gdpr.settings import GdprSettings

USER = "erase-me-0042"


def settings(root: Path) -> GdprSettings:
    gdpr = root / "data" / "gdpr"
    return GdprSettings(
        root=root,
        duckdb=root / "data" / "recops.duckdb",
        salt_file=gdpr / "salt",
        erasure_list=gdpr / "erasures.json",
        retrain_request=gdpr / "retrain.json",
        audit_log=root / "reports" / "gdpr" / "audit.jsonl",
        retrain="next-cycle",
        derived=(root / "data" / "snapshot",),
        model_name="m",
        user_column="user_id",
    )


def dvc(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


def test_purge_collects_the_old_dvc_copy(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    snapshot = root / "data" / "snapshot"
    snapshot.mkdir(parents=True)
    (snapshot / "events.csv").write_text(f"user_id,item_id\n{USER},i1\nu2,i2\n")
    dvc(root, "init", "--no-scm", "-q")
    dvc(root, "add", "-q", "data/snapshot")
    cache = root / ".dvc" / "cache"
    assert files.files_holding([cache], USER)
    for kind, path in files.targets([snapshot]):
        files.erase(kind, path, USER, ("user_id",))
    assert not files.files_holding([snapshot], USER)
    assert files.files_holding([cache], USER)  # the erasure alone leaves DVC's copy
    leftover = root / "data" / ".snapshot.gdpr-old"
    leftover.mkdir()
    report = purge(settings(root), f"sqlite:///{tmp_path / 'mlflow.db'}", [root / "data"])
    outcomes = {s["step"]: s["outcome"] for s in report.steps}
    assert outcomes["dvc commit --force"] == "ok" and outcomes["dvc gc --workspace --force"] == "ok"
    assert outcomes["interrupted rewrites"] == "1 removed" and not leftover.exists()
    assert not files.files_holding([cache], USER)
    assert "u2" in (snapshot / "events.csv").read_text()
