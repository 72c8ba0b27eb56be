"""Which training a cycle does once events arrived: full, fold-in or none."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from recops.config import compose
from recops.models.als import ALSModel
from recops.models.popularity import PopularityModel
from recops.worker.cycle import CycleRecord, Worker
from recops.worker.state import WorkerState, iso, utc_now


def _worker(tmp_path: Path, *overrides: str) -> Worker:
    return Worker(compose([f"worker.work_dir={tmp_path}", *overrides]))


def _champion(model: Any) -> Any:
    return SimpleNamespace(recommender=SimpleNamespace(model=model), version="1")


@pytest.mark.parametrize(
    ("action", "overrides", "expected", "reason"),
    [
        ("retrain_now", (), "full", "drift: retrain_now"),
        ("retrain_soon", (), "full", "drift: retrain_soon"),
        ("plan_retrain", (), None, None),
        ("plan_retrain", ("worker.retrain_on=[plan_retrain]",), "full", "drift: plan_retrain"),
        ("ok", ("worker.fold_in=true",), "fold_in", "new data since the last training: fold-in"),
        ("ok", (), None, None),
    ],
)
def test_decision_follows_the_policy(
    tmp_path: Path, action: str, overrides: tuple[str, ...], expected: str | None, reason: str
) -> None:
    worker = _worker(tmp_path, *overrides)
    record = CycleRecord(1, "now", 0, action=action)
    mode = worker._decide(WorkerState(), _champion(ALSModel()), record, False, True)
    assert (mode, record.retrain_reason) == (expected, reason)


def test_no_champion_or_no_reference_means_a_full_retrain(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "worker.fold_in=true")
    record = CycleRecord(1, "now", 0)
    assert worker._decide(WorkerState(), None, record, False, False) == "full"
    assert record.retrain_reason == "no champion yet"
    assert worker._decide(WorkerState(), _champion(ALSModel()), record, False, False) == "full"
    assert "not in the store" in str(record.retrain_reason)


def test_schedule_and_fold_in_only_for_als(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "worker.fold_in=true", "worker.retrain_every=1h")
    record = CycleRecord(1, "now", 0, action="ok")
    assert worker._decide(WorkerState(), _champion(ALSModel()), record, True, True) == "full"
    assert record.retrain_reason == "schedule: 1h since the last training"
    assert worker._decide(WorkerState(), _champion(PopularityModel()), record, False, True) is None


def test_schedule_is_due_only_with_untrained_batches_and_time_passed(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "worker.retrain_every=1h")
    state = WorkerState(trained_through_batch=3, last_trained_at=iso(utc_now()))
    assert not worker._schedule_due(state, 4)  # trained a moment ago
    state.last_trained_at = "2020-01-01T00:00:00+00:00"
    assert worker._schedule_due(state, 4)
    assert not worker._schedule_due(state, 3)  # nothing new since
    assert not _worker(tmp_path, "worker.retrain_every=null")._schedule_due(state, 4)
