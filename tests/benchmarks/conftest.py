"""Benchmarks write their results under reports/benchmarks/ (run with `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS = PROJECT_ROOT / "reports" / "benchmarks"
ML_SMALL = PROJECT_ROOT.parent / "shared" / "datasets" / "ml-latest-small"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "benchmarks" in str(item.path):
            item.add_marker(pytest.mark.benchmark)
