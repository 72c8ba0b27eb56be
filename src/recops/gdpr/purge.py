"""`recops gdpr purge`: remove copies an erasure cannot rewrite in place.

- DVC's cache keeps every version of `data/snapshot`, `data/features` and `models/model` that
  was ever committed: the rewritten outputs are committed (`dvc commit -f`, which updates
  `dvc.lock`) and the cache is garbage-collected to what the workspace uses
  (`dvc gc --workspace --force`). Remotes (`dvc gc --cloud`) and older git commits' `dvc.lock`
  are out of scope: see the README.
- MLflow keeps the artifacts of deleted runs until `mlflow gc` (local SQLite stores).
- Interrupted rewrites leave `.<name>.gdpr-new|old` folders: they are removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from recops.gdpr.settings import GdprSettings


@dataclass
class PurgeReport:
    steps: list[dict[str, str]] = field(default_factory=list)

    def add(self, name: str, outcome: str) -> None:
        self.steps.append({"step": name, "outcome": outcome})


def _run(cmd: list[str], cwd: Path) -> tuple[bool, str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, text[-1] if text else ""


def purge_dvc(root: Path, report: PurgeReport) -> None:
    if not (root / ".dvc").is_dir():
        report.add("dvc", "no DVC repository: nothing to collect")
        return
    dvc = [sys.executable, "-m", "dvc"]
    ok, last = _run([*dvc, "commit", "--force", "--quiet"], root)
    report.add("dvc commit --force", "ok" if ok else f"failed: {last}")
    ok, last = _run([*dvc, "gc", "--workspace", "--force", "--quiet"], root)
    report.add("dvc gc --workspace --force", "ok" if ok else f"failed: {last}")


def purge_mlflow(tracking_uri: str, root: Path, report: PurgeReport) -> None:
    if not tracking_uri.startswith("sqlite:///"):
        report.add("mlflow gc", "tracking server: run `mlflow gc` where the server runs")
        return
    cmd = [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", tracking_uri]
    ok, last = _run(cmd, root)
    report.add("mlflow gc", "ok" if ok else f"failed: {last}")


def purge_leftovers(roots: list[Path], report: PurgeReport) -> None:
    removed = 0
    for root in roots:
        if not root.is_dir():
            continue
        for path in list(root.rglob(".*.gdpr-*")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    report.add("interrupted rewrites", f"{removed} removed")


def purge(s: GdprSettings, tracking_uri: str, roots: list[Path]) -> PurgeReport:
    report = PurgeReport()
    purge_leftovers(roots, report)
    purge_dvc(s.root, report)
    purge_mlflow(tracking_uri, s.root, report)
    return report
