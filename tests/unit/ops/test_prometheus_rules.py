"""bentos/prometheus: the rules parse (`promtool check rules`), every alert passes its unit tests
against synthetic series (`promtool test rules`), and the thresholds agree with conf/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from recops.config import compose, to_dict
from recops.serving.config import ServeConfig

PROM = Path(__file__).resolve().parents[3] / "bentos" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian `prometheus`; `make system`)"
)


def promtool(*args: str | Path) -> str:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, *map(str, args)], cwd=PROM, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for rule in rules():
        if "alert" in rule:
            out.setdefault(rule["alert"], []).append(rule)
    return out


def threshold(expr: str) -> float:
    """The number an alert compares against (`... > 0.1`, `... < 0.999`)."""
    match = re.search(r"[<>]=?\s*([0-9.]+)\s*$", expr.strip())
    assert match, expr
    return float(match.group(1))


@needs_promtool
def test_rules_and_example_config_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", "rules.yml")
    promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_every_alert_passes_its_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "tests.yml")


@needs_promtool
def test_the_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The same tests against rules with ModelLoadFailure at > 20 must fail."""
    for name in ("rules.yml", "tests.yml"):
        shutil.copy2(PROM / name, tmp_path / name)
    text = (tmp_path / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(text.replace("increase5m > 10", "increase5m > 20"))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "ModelLoadFailure" in proc.stdout + proc.stderr


def test_the_issue_alerts_exist_and_each_is_tested_firing() -> None:
    wanted = {
        "HighLatencyP95",
        "HighErrorRate",
        "CriticalErrorRate",
        "ServiceDown",
        "LowAvailability",
        "ModelLoadFailure",
        "HighDataDrift",
        "LowCacheHitRate",
        "HighFallbackRate",
    }
    assert set(alerts()) == wanted
    tests = yaml.safe_load((PROM / "tests.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == wanted
    readme = (PROM / "README.md").read_text()
    for name in wanted:
        assert f"| `{name}`" in readme, f"{name} missing from the runbook table"


def test_thresholds_agree_with_the_config() -> None:
    cfg = to_dict(compose([]))
    slo = ServeConfig.from_mapping(cfg["serve"]).slo
    bands = cfg["drift"]["bands"]
    by_name = alerts()

    def only(name: str) -> float:
        (rule,) = by_name[name]
        return threshold(rule["expr"])

    assert only("HighLatencyP95") == slo.p95_ms / 1000
    assert only("HighErrorRate") == slo.error_rate
    assert only("LowAvailability") == slo.availability
    assert only("LowCacheHitRate") == slo.min_cache_hit_rate
    assert only("HighFallbackRate") == slo.max_fallback_rate
    assert only("ModelLoadFailure") == 10

    def lower(rule: dict[str, Any]) -> float:
        match = re.search(r">=\s*([0-9.]+)", rule["expr"])
        assert match, rule["expr"]
        return float(match.group(1))

    drift = sorted(by_name["HighDataDrift"], key=lower)
    assert [lower(r) for r in drift] == [
        bands["plan_retrain"],
        bands["retrain_soon"],
        bands["retrain_now"],
    ]
    assert [r["labels"]["action"] for r in drift] == ["plan_retrain", "retrain_soon", "retrain_now"]
    burn = next(r for r in rules() if r.get("record") == "recops:error_budget_burn:rate1h")
    assert f"(1 - {slo.availability})" in burn["expr"]
