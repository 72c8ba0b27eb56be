"""Optuna sweep: `python -m pipelines.sweep model=als sweep.trials=50 sweep.timeout=600`.

Runs (or resumes) the study `<data.name>-<model>` over `conf/sweep/<model>.yaml`; each trial
is a nested MLflow run. Same as `recops optimize model=als trials=50 timeout=600`.
"""

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from recops.cli_support import exit_on_error
from recops.console import console
from recops.tuning.study import run_study


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    overrides = list(HydraConfig.get().overrides.task)
    # Trials compose their configs with Hydra's compose API, which needs Hydra's global
    # state free; `cfg` itself is not used beyond this point.
    GlobalHydra.instance().clear()
    with exit_on_error():
        outcome = run_study(overrides)
    console.print_json(data=outcome.headline())


if __name__ == "__main__":
    main()
