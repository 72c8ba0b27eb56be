"""Platform overhead: the recops train stage vs a bare implicit ALS fit on the same matrix.

Each measurement runs in a fresh Python process (so peak RSS is its own) on the same
synthetic features; the ratio is taken within one run. Goal: <= 1.15x at 10M events.
Writes reports/benchmarks/speed.md (and .json).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import PROJECT_ROOT, RESULTS

ROUNDS = 3
SIZES = {"1M": (50_000, 10_000, 1_000_000), "10M": (300_000, 40_000, 10_000_000)}

BARE = """
import json, resource, sys, time
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares
matrix = sp.load_npz(sys.argv[1]).tocsr()
with threadpool_limits(1, "blas"):
    model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, alpha=2.0,
                                    num_threads=2, random_state=42)
    start = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PLATFORM = """
import json, resource, sys, time
from recops.config import compose
from recops.pipeline.context import StagePaths
from recops.pipeline.train import train_stage
cfg = compose(sys.argv[2:])
paths = StagePaths.from_config(cfg)
start = time.perf_counter()
outcome = train_stage(cfg, paths)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "fit_seconds": outcome.fit_time_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def summarise(
    events: int, bare: list[dict[str, Any]], platform: list[dict[str, Any]]
) -> dict[str, Any]:
    """Medians over rounds (the machine is shared: single samples vary by tens of percent)."""
    med = statistics.median
    recops_s = med(p["seconds"] for p in platform)
    return {
        "events": events,
        "bare_s": med(b["seconds"] for b in bare),
        "recops_s": recops_s,
        "recops_fit_s": med(p["fit_seconds"] for p in platform),
        "overhead_s": med(p["seconds"] - p["fit_seconds"] for p in platform),
        "ratio": recops_s / med(b["seconds"] for b in bare),
        "bare_rss_mb": max(b["peak_rss_mb"] for b in bare),
        "recops_rss_mb": max(p["peak_rss_mb"] for p in platform),
        "samples": {"bare": bare, "recops": platform},
    }


def python(code: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        check=False,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def overrides(tmp: Path, users: int, items: int, events: int) -> list[str]:
    return [
        f"data.source.n_users={users}",
        f"data.source.n_items={items}",
        f"data.source.n_events={events}",
        "model.show_progress=false",
        f"paths.duckdb={tmp / 'db.duckdb'}",
        f"paths.snapshot_dir={tmp / 'snap'}",
        f"paths.features_dir={tmp / 'features'}",
        f"paths.model_dir={tmp / 'model'}",
        f"paths.run_file={tmp / 'run.json'}",
        "experiment=benchmark-speed",
    ]


def features_code_key() -> str:
    """Hash of the code that writes the features (the cached world is rebuilt when it changes,
    so the train stage is always measured on what the current features stage produces)."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "src" / "recops" / "features").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def prepare(args: list[str], work: Path, env: dict[str, str]) -> None:
    """Generate, ingest and split the world once; later runs reuse it (it is deterministic)."""
    if (work / "features" / "manifest.json").exists():
        return
    code = (
        "import sys\nfrom recops.config import compose\nfrom recops.pipeline.context import "
        "StagePaths\nfrom recops.pipeline.prepare import ingest_stage, features_stage\n"
        "cfg = compose(sys.argv[1:]); p = StagePaths.from_config(cfg)\n"
        "ingest_stage(cfg, p); features_stage(cfg, p)\nprint('{}')"
    )
    python(code, *args, env=env)


def test_train_stage_overhead(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    rows = {}
    for label, (users, items, events) in SIZES.items():
        work = PROJECT_ROOT / "data" / "cache" / "benchmarks" / f"{label}-{features_code_key()}"
        args = overrides(work, users, items, events)
        prepare(args, work, env)
        matrix = str(work / "features" / "user_items.npz")
        bare, platform = [], []
        for _ in range(ROUNDS):  # alternate, so drifting machine load hits both alike
            bare.append(python(BARE, matrix, env=env))
            platform.append(python(PLATFORM, "-", *args, env=env))
        rows[label] = summarise(events, bare, platform)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "# Train-stage overhead vs bare implicit ALS (64 factors, 15 iterations, 2 threads)",
        "",
        "`recops` = `train_stage`: load features, fit, save the model, log the MLflow "
        "run and pyfunc model. `bare` = `AlternatingLeastSquares.fit` on the same CSR. "
        f"Medians of {ROUNDS} alternating rounds, each in a fresh process; the ratio is "
        "median recops / median bare; `overhead` = recops train minus its own fit.",
        "",
        "| events | bare fit (s) | recops train (s) | recops fit (s) | overhead (s) | ratio | "
        "bare peak RSS (MB) | recops peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['bare_s']:.1f} | {r['recops_s']:.1f} | {r['recops_fit_s']:.1f} | "
            f"{r['overhead_s']:.1f} | {r['ratio']:.2f}x | {r['bare_rss_mb']:.0f} | "
            f"{r['recops_rss_mb']:.0f} |"
        )
    (RESULTS / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    assert all(r["ratio"] > 0 for r in rows.values())
