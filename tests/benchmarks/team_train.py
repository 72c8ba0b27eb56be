"""`python -m pipelines.train OVERRIDE...` in this process with every MLflow call timed, for
tests/benchmarks/test_team.py: prints `MLFLOW_CALLS {json}` at the end.

Timed: each public function of `mlflow`, `mlflow.pyfunc` and `mlflow.artifacts` and each
public method of `MlflowClient` (runs, metrics, artifacts, model upload, registry, aliases,
tags, searches). Only the outermost call counts (a fluent `mlflow.log_metric` that calls
`MlflowClient.log_metric` is counted once), per thread: the main thread's MLflow time is on
the command's critical path; the pipeline's "mlflow-setup" thread opens the store while the
model trains.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import runpy
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
from mlflow.tracking import MlflowClient

_state = threading.local()
_lock = threading.Lock()
by_thread: dict[str, float] = defaultdict(float)
by_call: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "inside", False):
            return fn(*args, **kwargs)
        _state.inside = True
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            _state.inside = False
            main = threading.current_thread() is threading.main_thread()
            with _lock:
                by_thread["main" if main else "background"] += elapsed
                by_call[name] += elapsed
                calls[name] += 1

    return wrapper


def wrap_module(module: ModuleType) -> None:
    for name, value in list(vars(module).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(module, name, timed(f"{module.__name__}.{name}", value))


def wrap_client() -> None:
    for name, value in list(vars(MlflowClient).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(MlflowClient, name, timed(f"MlflowClient.{name}", value))


def main() -> None:
    for module in (mlflow, mlflow.pyfunc, mlflow.artifacts):
        wrap_module(module)
    wrap_client()
    sys.path.insert(0, os.getcwd())  # the project root: `pipelines` is importable
    sys.argv = ["pipelines/train.py", *sys.argv[1:]]
    try:
        runpy.run_module("pipelines.train", run_name="__main__", alter_sys=True)
    finally:
        top = sorted(by_call.items(), key=lambda kv: -kv[1])[:8]
        report = {
            "mlflow_main_s": by_thread["main"],
            "mlflow_background_s": by_thread["background"],
            "n_calls": sum(calls.values()),
            "top_calls": {name: round(seconds, 3) for name, seconds in top},
        }
        print("MLFLOW_CALLS " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
