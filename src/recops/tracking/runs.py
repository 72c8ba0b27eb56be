"""Runs left RUNNING by a process that died (`kill -9`, OOM, power loss).

RecOps tags every run it opens with `recops.owner` (host, pid and the process's start time);
`fail_stale_runs` marks RUNNING runs whose owner process on this host is gone FAILED, with the
tag `recops.failed_reason`. Runs owned by another host are left alone (their process cannot be
checked from here), and so are runs that were terminated once and reopened by another process
(DVC's evaluate stage resumes the train stage's run).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
OWNER_TAG = "recops.owner"
FAILED_REASON_TAG = "recops.failed_reason"
STALE_REASON = "the process running it died (found by recovery on the next recops command)"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def owner_tags() -> dict[str, str]:
    """The `recops.owner` tag of a run opened by this process."""
    pid = os.getpid()
    owner = {"host": socket.gethostname(), "pid": pid, "start": _start_ticks(pid)}
    return {OWNER_TAG: json.dumps(owner, sort_keys=True)}


def owner_alive(value: str) -> bool | None:
    """Whether the owner process still runs; None when it cannot be told (another host)."""
    try:
        owner = json.loads(value)
        host, pid, start = str(owner["host"]), int(owner["pid"]), owner.get("start")
    except (ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    return start is None or _start_ticks(pid) in (None, start)


def fail_stale_runs(client: Any) -> list[str]:
    """Mark RUNNING RecOps runs whose process is gone FAILED; returns their ids."""
    failed: list[str] = []
    try:
        experiments = [e.experiment_id for e in client.search_experiments()]
        if not experiments:
            return failed
        runs = client.search_runs(
            experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000
        )
    except MlflowException as exc:
        log.debug("stale-run check skipped: %s", exc)
        return failed
    for run in runs:
        owner = run.data.tags.get(OWNER_TAG)
        # a run reopened by a later stage (DVC's evaluate stage resumes the train run) has an
        # end time and another process behind it than its owner: never failed from here
        reopened = run.info.end_time is not None
        if owner is None or reopened or owner_alive(owner) is not False:
            continue
        client.set_tag(run.info.run_id, FAILED_REASON_TAG, STALE_REASON)
        client.set_terminated(run.info.run_id, "FAILED")
        failed.append(run.info.run_id)
        log.warning(
            "MLflow run %s was left RUNNING: marked FAILED (%s)", run.info.run_id, STALE_REASON
        )
    return failed
