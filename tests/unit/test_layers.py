"""The import-linter contracts of pyproject.toml hold (lower layers never import higher ones),
and they do catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def test_the_layer_contracts_are_kept() -> None:
    proc = lint_imports(ROOT / "src", ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    data_init = tmp_path / "src" / "recops" / "data" / "__init__.py"
    data_init.write_text(data_init.read_text() + "\nimport recops.registry.lifecycle\n")
    proc = lint_imports(tmp_path / "src", tmp_path)
    assert proc.returncode != 0
    assert "recops.data is not allowed to import recops.registry" in proc.stdout
