"""Import slow modules on a background thread while a stage does its first work.

MLflow, matplotlib and Evidently cost seconds to import; the evaluate stage scores users and
the drift stage reads its windows (Arrow, numpy and BLAS work that releases the GIL) before
either needs them. The stage calls `preload_in_background(...)` when that work starts, and
the later real `import` finds the modules loaded (Python's per-module import locks make the
two imports safe). An import error is not reported here: the real import raises it where
the module is used."""

from __future__ import annotations

import importlib
import threading


def preload_in_background(*modules: str) -> threading.Thread:
    """Start importing `modules` (in order) on a daemon thread; returns the thread."""
    thread = threading.Thread(target=_import_all, args=modules, name="preload", daemon=True)
    thread.start()
    return thread


def _import_all(*modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # raised again, with its traceback, by the real import
            return
