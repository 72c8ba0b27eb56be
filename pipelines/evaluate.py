"""DVC stage `evaluate` (see dvc.yaml); standalone: `python -m pipelines.evaluate [overrides]`."""

import hydra
from omegaconf import DictConfig

from recops.cli_support import exit_on_error
from recops.pipeline.stages import run_stage
from recops.preload import preload_in_background


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    if cfg.eval.evidently.enabled:  # its recsys report comes after scoring
        preload_in_background("evidently", "evidently.metrics")
    with exit_on_error():
        run_stage("evaluate", cfg)


if __name__ == "__main__":
    main()
