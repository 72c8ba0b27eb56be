"""Start/stop helpers for tests that run real servers (bentoml serve, mlflow ui) on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started with `start_new_session=True`: its process group, then any child
    left (circus starts each BentoML worker in a process group of its own)."""
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:
        worker.kill()


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a BentoML server under test: the project's venv first on PATH, its own
    BentoML home in `tmp`, no inherited serve overrides or metrics dirs."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in ("MLFLOW_REGISTRY_URI", "RECOPS_SERVE_OVERRIDES", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(key, None)
    env.update(
        BENTOML_HOME=str(tmp / "bentoml_home"),
        BENTOML_DO_NOT_TRACK="True",
        OPENBLAS_NUM_THREADS="1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def start_bentoml(
    args: list[str], cwd: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`bentoml serve <args>` on a free loopback port in its own process group (stop it with
    `stop`); output goes to `log`. Returns the process and its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", *args, "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}"
