from __future__ import annotations

from recops.serving.stats import RECOMMEND, SIMILAR, ServingStats, summarize, version_summary


def test_record_and_summarize_across_workers() -> None:
    a, b = ServingStats(), ServingStats()
    for i in range(10):
        a.record(
            RECOMMEND,
            200,
            0.001 * (i + 1),
            {"source": "model", "version": "1", "role": "champion", "cached": i % 2 == 0},
        )
    b.record(RECOMMEND, 200, 0.002, {"source": "fallback", "version": "2", "role": "challenger"})
    b.record(RECOMMEND, 400, 0.0005, {})
    b.record(RECOMMEND, 500, 0.003, {"version": "1", "role": "champion"})
    b.record(SIMILAR, 404, 0.001, {})
    b.record_reload("failure")
    s = summarize([a.snapshot(), b.snapshot()])
    rec = s["recommend"]
    assert s["workers"] == 2
    assert (rec["requests"], rec["errors"], rec["client_errors"]) == (13, 1, 1)
    assert rec["by_status"] == {"200": 11, "400": 1, "500": 1}
    assert rec["by_source"] == {"model": 10, "fallback": 1}
    assert rec["fallback_rate"] == 1 / 11
    assert rec["cache"] == {"hits": 5, "misses": 6, "hit_rate": 5 / 11}
    assert rec["latency_ms"]["samples"] == 13 and rec["latency_ms"]["max"] == 10.0
    assert s["endpoints"][SIMILAR]["client_errors"] == 1
    assert s["reloads"] == {"failure": 1}
    versions = version_summary([a.snapshot(), b.snapshot()])
    assert list(versions) == ["1", "2"]
    assert (versions["1"]["requests"], versions["1"]["errors"]) == (11, 1)
    assert versions["2"]["roles"] == ["challenger"]


def test_a_failed_challenger_counts_as_its_error() -> None:
    stats = ServingStats()
    stats.record(
        RECOMMEND,
        200,
        0.001,
        {"source": "model", "version": "1", "role": "champion", "challenger_failed": "2"},
    )
    versions = version_summary([stats.snapshot()])
    assert versions["2"]["errors"] == 1 and versions["1"]["requests"] == 1


def test_empty_summary() -> None:
    s = summarize([ServingStats().snapshot()])
    assert s["recommend"]["requests"] == 0 and s["recommend"]["latency_ms"]["p50"] is None
    assert s["recommend"]["fallback_rate"] is None


def test_percentiles_from_merged_histograms_within_two_percent() -> None:
    a, b = ServingStats(), ServingStats()
    for ms in range(1, 1001):
        (a if ms % 2 else b).record(RECOMMEND, 200, ms / 1000, {})
    latency = summarize([a.snapshot(), b.snapshot()])["recommend"]["latency_ms"]
    assert latency["samples"] == 1000 and latency["max"] == 1000
    for name, exact in (("p50", 500), ("p95", 950), ("p99", 990)):
        assert abs(latency[name] - exact) / exact < 0.02, (name, latency[name])
