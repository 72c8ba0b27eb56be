"""The continuous-training worker against real stores: exactly-once ingest across restarts,
a failed or killed training leaves no registry entry, a shifted batch ends in a new champion,
fold-in between retrains, and the run/status/stop process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recops.config import compose
from recops.data.sources.synthetic import SyntheticSource
from recops.data.store import EventStore
from recops.models.als import ALSModel
from recops.paths import dataset_key
from recops.pipeline.stages import run_chain
from recops.tracking.model_files import load_registered_recommender
from recops.worker.cycle import Worker
from recops.worker.runner import WorkerBusyError, run_worker, stop_worker, worker_status

from .conftest import PROJECT_ROOT, TINY_WORLD, project_env, run, tiny_overrides
from .mlflow_template import initialised_store, tracking_env
from .servers import bentoml_service, server_env, wait_until

pytestmark = pytest.mark.integration
MODEL = "recops-recommender"
WORLD = {k.rsplit(".", 1)[1]: int(v) for k, v in TINY_WORLD.items()}
BASE_END = pd.Timestamp("2024-02-26")  # the 8 weeks of the base world end here
QUICK = {"model.factors": 16, "model.show_progress": False}


@pytest.fixture(scope="module")
def base_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world ingested (batch 1) and a champion (v1) trained on it; copied per test."""
    base = tmp_path_factory.mktemp("base-world")
    with tracking_env(initialised_store(base), PROJECT_ROOT):
        run_chain(compose(tiny_overrides(base, **QUICK)))
    return base


@pytest.fixture
def world(base_world: Path, tmp_path: Path) -> Iterator[list[str]]:
    """Overrides for a worker on a private copy of the base world."""
    for name in ("recops.duckdb", "mlflow.db"):
        shutil.copy2(base_world / name, tmp_path / name)
    overrides = tiny_overrides(
        tmp_path,
        **QUICK,
        **{
            "worker.incoming_dir": tmp_path / "incoming",
            "worker.work_dir": tmp_path / "worker",
            "worker.retrain_every": "null",
        },
    )
    with tracking_env(f"sqlite:///{tmp_path / 'mlflow.db'}", PROJECT_ROOT):
        yield overrides


def drop(folder: Path, name: str, shifted: bool) -> int:
    """Two more weeks of the world as an events file (shifted: 20% new items, new tastes, with
    an items file for the new items); returns the number of events."""
    extra = {"shift": {"weeks": 2}} if shifted else {"weeks": 10}
    raw = SyntheticSource(**{**WORLD, "n_events": 25_000}, **extra).load()  # type: ignore[arg-type]
    late = raw.events[raw.events["timestamp"] >= BASE_END]
    folder.mkdir(parents=True, exist_ok=True)
    late[["user_id", "item_id", "timestamp", "event_type"]].to_csv(folder / name, index=False)
    if shifted and raw.items is not None:
        raw.items.to_csv(folder / name.replace(".csv", ".items.csv"), index=False)
    return len(late)


def store_counts(overrides: list[str]) -> dict[str, int]:
    cfg = compose(overrides)
    with EventStore(Path(str(cfg.paths.duckdb))) as store:
        return store.counts(dataset_key(cfg.data))


def versions(client: MlflowClient) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))


def cycle_runs(client: MlflowClient) -> list[dict[str, str]]:
    experiment = client.get_experiment_by_name("recops-worker")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    return [{**r.data.tags, "status": r.info.status} for r in runs]


def test_a_dropped_file_is_processed_exactly_once_across_restarts(
    world: list[str], tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    n_events = drop(incoming, "week9-10.csv", shifted=False)
    before = store_counts(world)
    env = project_env(tmp_path)
    once = ["recops", "worker", "run", "--once", *world]
    out = run(once, PROJECT_ROOT, env)
    assert "ingested_no_drift" in out, out
    assert not (incoming / "week9-10.csv").exists()
    assert (incoming / "processed" / "week9-10.csv").exists()
    after_first = store_counts(world)
    assert after_first["events"] == before["events"] + n_events
    assert after_first["batches"] == before["batches"] + 1

    # the same bytes again, under another name, picked up by a new worker process
    shutil.copy2(incoming / "processed" / "week9-10.csv", incoming / "resent.csv")
    out = run(once, PROJECT_ROOT, env)
    assert "no_new_data" in out, out
    assert store_counts(world) == after_first
    assert (incoming / "processed" / "resent.csv").exists()

    info = worker_status(compose(world))
    assert info["running"] is False and info["queue"] == []
    assert info["last_cycle"]["outcome"] == "no_new_data"
    assert info["trained_through_batch"] == 1 and info["checked_through_batch"] == 2
    outcomes = [r["outcome"] for r in cycle_runs(MlflowClient())]
    assert outcomes == ["ingested_no_drift", "no_new_data"]


def test_failed_or_killed_training_leaves_no_registry_entry_and_the_next_cycle_succeeds(
    world: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose([*world, "worker.retrain_every=0s"])  # retrain whenever data arrived
    drop(tmp_path / "incoming", "week9-10.csv", shifted=False)
    client = MlflowClient()
    original_fit = ALSModel._fit

    def broken_fit(self: ALSModel, dataset: object) -> None:
        raise RuntimeError("disk full while training")

    monkeypatch.setattr(ALSModel, "_fit", broken_fit)
    failed = Worker(cfg).run_cycle()
    assert failed.outcome == "failed" and "disk full" in str(failed.error)
    assert failed.n_ingested_files == 1  # the ingest committed: the store is consistent
    assert versions(client) == ["1"]

    def killed_fit(self: ALSModel, dataset: object) -> None:
        raise KeyboardInterrupt  # as if the process were killed mid-training

    monkeypatch.setattr(ALSModel, "_fit", killed_fit)
    with pytest.raises(KeyboardInterrupt):
        Worker(cfg).run_cycle()
    assert versions(client) == ["1"]
    state = json.loads((tmp_path / "worker" / "state.json").read_text())
    assert state["running"]["cycle"] == 2 and state["trained_through_batch"] == 1

    monkeypatch.setattr(ALSModel, "_fit", original_fit)
    recovered = Worker(cfg).run_cycle()  # a new worker, as after a restart
    assert recovered.cycle == 3
    assert recovered.outcome in ("retrained_promoted", "retrained_not_promoted")
    assert recovered.training_mode == "full" and recovered.n_files == 0
    assert versions(client) == ["1", "2"]
    state = json.loads((tmp_path / "worker" / "state.json").read_text())
    assert [c["outcome"] for c in state["history"]] == [recovered.outcome, "failed", "failed"]
    assert "mid-cycle" in state["history"][1]["error"]
    assert state["trained_through_batch"] == 2
    runs = cycle_runs(client)
    assert [(r["outcome"], r["status"]) for r in runs] == [
        ("failed", "FAILED"),
        ("failed", "FAILED"),
        (recovered.outcome, "FINISHED"),
    ]


def kill_worker_at(point: str, tmp: Path, overrides: list[str]) -> None:
    """`recops worker run --once`, killed with SIGKILL when it reaches pause point `point`."""
    marker = tmp / f"paused-{point}"
    env = project_env(tmp, RECOPS_PAUSE_AT=point, RECOPS_PAUSE_FILE=str(marker))
    log = tmp / f"worker-{point}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["recops", "worker", "run", "--once", *overrides], cwd=PROJECT_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        assert wait_until(lambda: marker.exists() or proc.poll() is not None, 300)
        assert marker.exists(), log.read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def worker_state(tmp: Path) -> dict[str, Any]:
    return dict(json.loads((tmp / "worker" / "state.json").read_text()))


def test_a_kill_right_after_the_first_ingest_leaves_the_batch_untrained(
    world: list[str], tmp_path: Path
) -> None:
    drop(tmp_path / "incoming", "shifted.csv", shifted=True)
    kill_worker_at("worker-ingested", tmp_path, world)
    assert store_counts(world)["batches"] == 2  # the ingest committed before the kill
    assert worker_state(tmp_path)["trained_through_batch"] == 1

    record = Worker(compose(world)).run_cycle()  # the restarted worker
    assert record.action == "retrain_now" and record.max_psi is not None  # drift was checked
    assert record.outcome in ("retrained_promoted", "retrained_not_promoted")
    assert worker_state(tmp_path)["trained_through_batch"] == 2


def test_a_kill_during_the_workers_registration_is_recovered(
    world: list[str], tmp_path: Path
) -> None:
    overrides = [*world, "worker.retrain_every=0s"]  # retrain whenever data arrived
    drop(tmp_path / "incoming", "week9-10.csv", shifted=False)
    kill_worker_at("registration-created", tmp_path, overrides)
    client = MlflowClient()
    orphan = client.get_model_version(MODEL, "2")
    assert orphan.tags["recops.registration"].startswith("pending")
    killed_training_run = orphan.run_id
    assert client.get_run(killed_training_run).info.status == "FINISHED"

    recovered = Worker(compose(overrides)).run_cycle()
    assert recovered.outcome in ("retrained_promoted", "retrained_not_promoted")
    orphan = client.get_model_version(MODEL, "2")
    assert "recops.archived" in orphan.tags and orphan.tags["recops.registration"] == "complete"
    live = [
        v
        for v in versions(client)
        if "recops.archived" not in client.get_model_version(MODEL, v).tags
    ]
    assert live == ["1", recovered.model_version] and recovered.model_version == "3"
    records = [
        json.loads(line)
        for line in (tmp_path / "reports" / "registry" / "audit.jsonl").read_text().splitlines()
    ]
    archived = [r for r in records if r["action"] == "archive"]
    assert [r["from_version"] for r in archived] == ["2"]
    assert "registration interrupted" in archived[0]["reason"]
    cycles = cycle_runs(client)
    assert (cycles[0]["outcome"], cycles[0]["status"]) == ("failed", "FAILED")


@contextmanager
def live_service(tmp: Path) -> Iterator[Callable[[str], dict[str, Any]]]:
    """`bentoml serve` of bentos/ in live mode (follows the champion alias, polls every
    second) on 127.0.0.1; yields a `recommend(user_id)` client. Stopped with its group."""
    env = server_env(
        tmp,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        RECOPS_ROOT=str(PROJECT_ROOT),
        RECOPS_SERVE_OVERRIDES="poll_interval_s=1 sync_interval_s=0.2 workers=1 "
        "precompute.enabled=false canary.enabled=false cache.size=0",
    )
    bentos, log = PROJECT_ROOT / "bentos", tmp / "serve.log"
    with bentoml_service(["service:RecOps"], bentos, env, log, timeout=90) as (_, url):

        def recommend(user: str) -> dict[str, Any]:
            response = httpx.post(f"{url}/recommend", json={"user_id": user, "k": 5}, timeout=30)
            assert response.status_code == 200, response.text
            return dict(response.json())

        yield recommend


def test_shifted_batch_is_retrained_promoted_and_served(world: list[str], tmp_path: Path) -> None:
    drop(tmp_path / "incoming", "shifted.csv", shifted=True)
    env = project_env(tmp_path)
    with live_service(tmp_path) as recommend:
        user = "u00001"
        assert recommend(user)["model_version"] == "1"
        out = run(["recops", "worker", "run", "--once", *world], PROJECT_ROOT, env)
        assert "retrained_promoted" in out, out
        # the service follows the champion alias: the next poll loads v2
        assert wait_until(lambda: recommend(user)["model_version"] == "2", 30)

    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "2"
    assert champion.tags["training_mode"] == "full"
    assert client.get_run(champion.run_id).data.tags["training_mode"] == "full"
    (cycle,) = cycle_runs(client)
    assert cycle["outcome"] == "retrained_promoted" and cycle["action"] == "retrain_now"
    assert cycle["model_version"] == "2" and cycle["promoted_to"] == "champion"
    summary = json.loads((tmp_path / "reports" / "drift" / "summary.json").read_text())
    assert summary["source"] == "worker" and summary["action"] == "retrain_now"
    assert summary["features"]["new_items"]["drifted"] is True
    assert summary["model"]["version"] == "1"  # the champion the check compared
    v2 = load_registered_recommender(MlflowClient(), MODEL, "2")
    new_items = {i for i in v2.items.external_ids if int(i[1:]) >= 150}
    assert new_items  # the new champion knows the shifted period's new items


def test_fold_in_between_retrains_is_registered_as_such(world: list[str], tmp_path: Path) -> None:
    cfg = compose([*world, "worker.fold_in=true"])
    drop(tmp_path / "incoming", "week9-10.csv", shifted=False)
    record = Worker(cfg).run_cycle()
    assert record.outcome in ("retrained_promoted", "retrained_not_promoted"), record.error
    assert record.training_mode == "fold_in" and record.action == "ok"
    client = MlflowClient()
    version = client.get_model_version(MODEL, str(record.model_version))
    assert version.tags["training_mode"] == "fold_in"
    tags = client.get_run(str(record.training_run_id)).data.tags
    assert tags["training_mode"] == "fold_in" and tags["recops.folded_from"] == "1"


def test_promote_to_challenger_goes_through_the_registry_lifecycle(
    world: list[str], tmp_path: Path
) -> None:
    cfg = compose([*world, "worker.promote_to=challenger", "worker.retrain_every=0s"])
    drop(tmp_path / "incoming", "week9-10.csv", shifted=False)
    record = Worker(cfg).run_cycle()
    assert record.outcome == "retrained_promoted", record.error
    assert record.retrain_reason == "schedule: 0s since the last training"
    assert record.promoted_to == "challenger"
    aliases = {k: str(v) for k, v in MlflowClient().get_registered_model(MODEL).aliases.items()}
    assert aliases["challenger"] == aliases["candidate"] == record.model_version
    assert aliases["champion"] == "1"  # a challenger is not served to everyone


def test_run_status_and_stop_of_a_long_running_worker(tmp_path: Path) -> None:
    """A real `recops worker run` process; status, a refused second worker and stop go
    through the same functions as the CLI, in this process."""
    initialised_store(tmp_path)
    overrides = tiny_overrides(
        tmp_path,
        **{
            "worker.incoming_dir": tmp_path / "incoming",
            "worker.work_dir": tmp_path / "worker",
            "worker.poll_interval": "1s",
        },
    )
    worker = subprocess.Popen(
        ["recops", "worker", "run", *overrides],
        cwd=PROJECT_ROOT, env=project_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    cfg = compose(overrides)
    try:
        deadline = time.monotonic() + 60
        while (worker_status(cfg)["last_cycle"] or {}).get("cycle", 0) < 2:
            assert time.monotonic() < deadline and worker.poll() is None, worker.stdout
            time.sleep(0.2)
        info = worker_status(cfg)
        assert info["running"] and info["pid"] == worker.pid
        assert info["last_cycle"]["outcome"] == "no_new_data" and info["next_cycle_due"]
        (tmp_path / "incoming" / "waiting.csv.part").write_text("still being copied")
        assert worker_status(cfg)["queue"] == []  # partial files are not picked up

        with pytest.raises(WorkerBusyError, match=f"already running \\(pid {worker.pid}\\)"):
            run_worker(cfg, once=True)

        assert stop_worker(cfg, timeout=60) == worker.pid
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, out
        assert "SIGTERM received: stopping after the current cycle" in out
    finally:
        if worker.poll() is None:
            worker.kill()
    info = worker_status(cfg)
    assert not info["running"] and info["current_cycle"] is None
    assert not (tmp_path / "worker" / "worker.pid").exists()
    assert stop_worker(cfg) is None
