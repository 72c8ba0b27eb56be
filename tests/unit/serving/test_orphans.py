"""A BentoML worker must not outlive its arbiter, even one that died before the worker's
runtime started (the worker was still importing, then was reparented): seen as a worker left
serving after `kill -9` of `recops serve` under load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from recops.serving.launch import ARBITER_ENV

#: The "arbiter": starts a "worker" and dies at once; the worker waits until it has been
#: reparented, then builds a runtime the way bentos/service.py does (exit_with_parent).
ARBITER = textwrap.dedent(
    """
    import os, subprocess, sys
    env = {**os.environ, %(env)r: str(os.getpid())}
    with open(sys.argv[2], "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", sys.argv[1]], env=env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL,
        )
    print(worker.pid, flush=True)
    os._exit(0)
    """
) % {"env": ARBITER_ENV}
WORKER = textwrap.dedent(
    """
    import os, sys, time
    sys.path[:0] = [%(tests)r]
    while os.getppid() == int(os.environ[%(env)r]):  # until the arbiter is gone
        time.sleep(0.05)
    from recops.serving.runtime import ServingRuntime
    from conftest import FakeSource, make_cfg
    rt = ServingRuntime(make_cfg(), FakeSource("m"), exit_with_parent=True)
    rt.start()
    time.sleep(60)  # an orphan would serve on; the parent watch must end it first
    sys.exit(3)
    """
) % {"tests": str(Path(__file__).parent), "env": ARBITER_ENV}


def test_a_worker_whose_arbiter_died_before_its_runtime_started_exits(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    out = subprocess.run(
        [sys.executable, "-c", ARBITER, WORKER, str(log)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    worker = psutil.Process(int(out.stdout.split()[0]))
    try:
        worker.wait(timeout=50)
    except psutil.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"the orphaned worker kept running:\n{log.read_text()}") from None
    assert "the BentoML arbiter (pid" in log.read_text()
