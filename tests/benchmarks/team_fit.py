"""One fit in a fresh process, for tests/benchmarks/test_team.py: `python team_fit.py
FEATURES_DIR OVERRIDE...` prints JSON with the fit time, NDCG@10 on the split's test set and
the peak resident memory (VmHWM) of this process and, for Spark, of its JVM."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil

from recops.config import compose
from recops.features.dataset import SplitData
from recops.models.recommender import Recommender
from recops.pipeline.evaluate import evaluate_with_config
from recops.pipeline.train import build_model


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    folder, overrides = Path(sys.argv[1]), sys.argv[2:]
    split = SplitData.load(folder)
    cfg = compose(overrides)
    model = build_model(cfg)
    if hasattr(model, "show_progress"):
        model.show_progress = False
    start = time.perf_counter()
    model.fit(split.train)
    fit_s = time.perf_counter() - start
    java = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    jvm_mb = max((vm_hwm_mb(p.pid) for p in java), default=0.0)
    python_mb = vm_hwm_mb(psutil.Process().pid)
    result = evaluate_with_config(
        Recommender.from_training(model, split.train), split, cfg, with_baseline=False
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "fit_s": fit_s,
                "ndcg_at_10": result.metrics["ndcg_at_10"],
                "python_hwm_mb": python_mb,
                "jvm_hwm_mb": jvm_mb,
                "peak_mb": python_mb + jvm_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
