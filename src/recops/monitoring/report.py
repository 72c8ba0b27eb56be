"""Run the Evidently data-drift report over the feature columns and read its verdicts back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from recops.monitoring.features import FEATURE_BY_NAME, padded_frame, usable
from recops.monitoring.policy import DriftPolicy
from recops.monitoring.psi import psi

FeatureColumns = dict[str, np.ndarray]


@dataclass
class FeatureResult:
    """One feature's comparison; `psi` is always PSI, `score` is the configured method's value."""

    group: str
    kind: str
    description: str
    method: str
    threshold: float
    n_reference: int
    n_current: int
    psi: float | None = None
    score: float | None = None
    drifted: bool = False
    band: str = "ok"
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary.json entry (the description lives in the README and the report)."""
        entry = {k: v for k, v in asdict(self).items() if v is not None or k == "psi"}
        entry.pop("description")
        entry.pop("kind")
        return entry


def compare(
    reference: FeatureColumns, current: FeatureColumns, policy: DriftPolicy
) -> tuple[Any, dict[str, FeatureResult]]:
    """The Evidently snapshot (None when no feature had enough data) and a result per feature."""
    results = {name: _blank(name, reference[name], current[name], policy) for name in reference}
    used = [n for n, r in results.items() if r.skipped is None]
    if not used:
        return None, results
    snapshot = _run_evidently(
        {n: reference[n] for n in used}, {n: current[n] for n in used}, policy
    )
    scores, failed = _read_snapshot(snapshot.dict())
    for name in used:
        result = results[name]
        result.score = scores[name]
        result.drifted = failed[name]
        numerical = result.kind == "numerical"
        result.psi = (
            result.score
            if result.method == "psi"
            else psi(reference[name], current[name], numerical=numerical)
        )
        result.band = policy.band(result.psi, result.drifted)
    return snapshot, results


def _blank(name: str, ref: np.ndarray, cur: np.ndarray, policy: DriftPolicy) -> FeatureResult:
    feature, setting = FEATURE_BY_NAME[name], policy.setting(name)
    n_ref, n_cur = (int(np.count_nonzero(~_missing(v))) for v in (ref, cur))
    result = FeatureResult(
        feature.group, feature.kind, feature.description, setting.method, setting.threshold,
        n_ref, n_cur,
    )  # fmt: skip
    if name in policy.exclude:
        result.skipped = "excluded by drift.exclude"
    elif not (usable(ref, policy.min_samples) and usable(cur, policy.min_samples)):
        result.skipped = f"fewer than drift.min_samples={policy.min_samples} values on a side"
    return result


def _missing(values: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(values)).to_numpy()


def _run_evidently(reference: FeatureColumns, current: FeatureColumns, policy: DriftPolicy) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = list(reference)
    definition = DataDefinition(
        numerical_columns=[n for n in names if FEATURE_BY_NAME[n].kind == "numerical"],
        categorical_columns=[n for n in names if FEATURE_BY_NAME[n].kind == "categorical"],
    )
    preset = DataDriftPreset(
        columns=names,
        drift_share=1.0 / len(names),  # the report's headline: "drift" as soon as one feature does
        method=policy.method,
        threshold=policy.threshold,
        per_column_method={n: policy.setting(n).method for n in names},
        per_column_threshold={n: policy.setting(n).threshold for n in names},
    )
    report = Report([preset], include_tests=True)
    return report.run(
        current_data=Dataset.from_pandas(padded_frame(current), data_definition=definition),
        reference_data=Dataset.from_pandas(padded_frame(reference), data_definition=definition),
    )


def _read_snapshot(data: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    """Per-column drift score (ValueDrift metrics) and verdict (their tests: FAIL = drifted)."""
    scores = {
        m["config"]["column"]: float(m["value"])
        for m in data.get("metrics", [])
        if m.get("config", {}).get("column") is not None
    }
    failed = {name: False for name in scores}
    for test in data.get("tests", []):
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in failed:
            failed[column] = test.get("status") == "FAIL"
    return scores, failed
