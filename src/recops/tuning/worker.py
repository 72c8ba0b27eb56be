"""One worker process of a shared study: `python -m recops.tuning.worker [--target N]
[--timeout S] [--index I] [--prepared FEATURES_DIR] -- <overrides>`. Started by
`recops optimize --workers N` (`recops.tuning.workers`); it joins the study by name and
runs trials until the study holds `--target` trials, `--timeout` passes or it is interrupted."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback

from recops.console import setup_logging
from recops.tuning.study import log_trial, open_session

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recops.tuning.worker")
    parser.add_argument("--target", type=int, default=None, help="stop at this many trials")
    parser.add_argument("--timeout", type=float, default=None, help="seconds")
    parser.add_argument("--index", type=int, default=0, help="worker number (sampler seed)")
    parser.add_argument(
        "--prepared", type=Path, default=None, help="features folder (default: ingest)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the study")
    args = parser.parse_args(argv)
    setup_logging()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    session = open_session(list(args.overrides), seed_offset=args.index + 1, prepared=args.prepared)
    study, metric = session.study, session.outcome.metric

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        log_trial(trial, metric)

    callbacks = [on_trial]
    if args.target is not None:
        if len(study.get_trials(deepcopy=False)) >= args.target:
            return 0
        callbacks.append(MaxTrialsCallback(args.target, states=None))
    try:
        study.optimize(
            session.objective, timeout=args.timeout, catch=(Exception,), callbacks=callbacks
        )
    except KeyboardInterrupt:
        log.warning("worker interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
