"""Series the alert rules and dashboard need: drift PSI per feature from the drift summary,
answers by model role/version (canary split), reload/cache counters present from the start."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import prometheus_client.values
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recops.config import compose
from recops.serving.config import ServeConfig
from recops.serving.metrics import DriftExporter, ServingMetrics
from recops.serving.runtime import drift_summary_path


@pytest.fixture(autouse=True)
def fresh_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's metrics count from their own zero. The serving tests switch this process to
    prometheus_client's multiprocess values (as BentoML does), whose per-pid files would hand a
    new counter of the same name the count an earlier test in this worker left behind."""
    monkeypatch.setattr(prometheus_client.values, "ValueClass", prometheus_client.values.MutexValue)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def write_summary(path: Path, features: dict[str, float | None], at: str) -> None:
    body = {
        "schema_version": 1,
        "generated_at": at,
        "features": {
            name: {"psi": psi, "drifted": bool(psi and psi >= 0.2)}
            for name, psi in features.items()
        },
    }
    path.write_text(json.dumps(body))


def test_drift_psi_per_feature_follows_the_summary(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    summary = tmp_path / "summary.json"
    exporter = DriftExporter(metrics, summary)
    assert exporter.refresh() is False  # no summary yet: no series, no error
    write_summary(summary, {"category": 0.41, "price": None}, "2026-11-23T02:39:59+00:00")
    assert exporter.refresh() is True
    values = samples(registry)
    assert values[("data_drift_psi", (("feature", "category"),))] == 0.41
    assert math.isnan(values[("data_drift_psi", (("feature", "price"),))])  # skipped feature
    assert values[("data_drift_summary_timestamp_seconds", ())] == 1795401599.0
    assert exporter.refresh() is False  # unchanged file: not re-read
    write_summary(summary, {"user_activity": 0.05}, "2026-11-24T00:00:00+00:00")
    os.utime(summary, (1, 1))  # a new stamp even within the file system's time resolution
    assert exporter.refresh() is True
    values = samples(registry)
    assert values[("data_drift_psi", (("feature", "user_activity"),))] == 0.05
    assert math.isnan(values[("data_drift_psi", (("feature", "category"),))])  # gone: NaN


def test_an_unreadable_summary_keeps_the_series(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    summary = tmp_path / "summary.json"
    exporter = DriftExporter(ServingMetrics(registry), summary)
    write_summary(summary, {"category": 0.3}, "2026-11-23T00:00:00+00:00")
    exporter.refresh()
    summary.write_text("{not json")
    assert exporter.refresh() is False
    assert samples(registry)[("data_drift_psi", (("feature", "category"),))] == 0.3


def test_answers_by_role_and_counters_from_zero() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    values = samples(registry)
    for result in ("success", "failure"):
        assert values[("model_reload_total", (("result", result),))] == 0.0
    for result in ("hit", "miss"):
        assert values[("recommend_cache_total", (("result", result),))] == 0.0
    metrics.observe_recommend(200, "model", 0.001, False, "challenger", "2")
    metrics.observe_recommend(200, "model", 0.001, True, "champion", "1")
    metrics.observe_recommend(500, None, 0.001, None, "champion", "1")  # not an answer
    values = samples(registry)
    answers = "recommend_model_answers_total"
    assert values[(answers, (("role", "challenger"), ("version", "2")))] == 1.0
    assert values[(answers, (("role", "champion"), ("version", "1")))] == 1.0


def test_drift_summary_path_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = ServeConfig.from_config(compose([]))  # the shipped conf/serve
    monkeypatch.delenv("RECOPS_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert drift_summary_path(cfg) == tmp_path / "reports" / "drift" / "summary.json"
    assert drift_summary_path(cfg.replace(drift_summary=None)) is None
