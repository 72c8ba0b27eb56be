"""`preload_in_background` imports modules on a thread; a failing import is left for the
real import to raise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recops.preload import preload_in_background


def test_modules_are_imported_in_order_and_a_missing_one_stops_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "recops_preload_a.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("recops_preload_a", "recops_preload_missing"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    thread = preload_in_background("recops_preload_a", "recops_preload_missing", "json")
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.daemon
    assert sys.modules["recops_preload_a"].LOADED is True
    assert "recops_preload_missing" not in sys.modules
    with pytest.raises(ModuleNotFoundError, match="recops_preload_missing"):
        __import__("recops_preload_missing")


def test_the_evaluate_stage_module_leaves_the_heavy_imports_for_later() -> None:
    """MLflow and matplotlib are imported while users are scored, not with the stage module."""
    import subprocess

    code = (
        "import sys\n"
        "import recops.pipeline.evaluate\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'matplotlib'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
