"""`exit_on_error`: one line for a user's error or MLflow's, a traceback for a bug, and no
mlflow import (seconds in every stage process) for the commands that never use it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recops.cli_support import exit_on_error
from recops.errors import ConfigError


def test_mlflow_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(SystemExit) as exited, exit_on_error():
        raise MlflowException("RESOURCE_DOES_NOT_EXIST: no run 'abc'\nmore detail")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "error: MLflow: RESOURCE_DOES_NOT_EXIST: no run 'abc'" in err
    assert "more detail" not in err


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit), exit_on_error():
        raise ConfigError("model.factors must be > 0, got -1")
    assert "error: model.factors must be > 0, got -1" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError), exit_on_error():
        _ = 1 / 0


def test_a_command_without_mlflow_does_not_import_it() -> None:
    code = (
        "import sys\n"
        "from recops.cli_support import exit_on_error\n"
        "with exit_on_error():\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_exit_skips_the_final_collection() -> None:
    """`gc.freeze` runs at exit (before the interpreter's final collection), once."""
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from recops.cli_support import exit_on_error\n"
        "for _ in range(2):\n"
        "    with exit_on_error():\n"
        "        pass\n"
        "print('running', gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["running", "False", "frozen", "True"], done.stdout
