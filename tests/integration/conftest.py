"""Helpers for tests that run the real pipeline against real stores in temp folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: A small synthetic world: the whole pipeline runs in seconds on it. (ALS needs few factors
#: here: with 64 it overfits the ~5k training pairs and barely beats popularity.)
TINY_WORLD = {
    "data.source.n_users": 400,
    "data.source.n_items": 150,
    "data.source.n_events": 20000,
}


def tiny_overrides(tmp: Path, **extra: object) -> list[str]:
    """Hydra overrides putting every output of a standalone run under `tmp`."""
    values = {
        **TINY_WORLD,
        "paths.duckdb": tmp / "recops.duckdb",
        "paths.cache_dir": tmp / "cache",
        "paths.reports_dir": tmp / "reports",
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


def project_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess: the project's venv first on PATH, a temp MLflow store."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("RECOPS_ROOT", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Run a command; on failure show its output in the assertion message."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A git + DVC repository holding a copy of the project's pipeline files."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("conf", "pipelines", "src"):
        shutil.copytree(
            PROJECT_ROOT / name,
            repo / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    (repo / ".dvc").mkdir()
    shutil.copy2(PROJECT_ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copy2(PROJECT_ROOT / ".dvc" / ".gitignore", repo / ".dvc" / ".gitignore")
    env = project_env(tmp_path)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run([*git, "commit", "-qm", "pipeline copy"], repo, env)
    return repo


@pytest.fixture(scope="session")
def tiny_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with a registered ALS champion, trained once per session (see
    `worlds.build_tiny_project`); tests take a private copy with `worlds.copy_project`."""
    from .worlds import build_tiny_project

    root = tmp_path_factory.mktemp("tiny-project-template") / "project"
    build_tiny_project(root)
    return root
