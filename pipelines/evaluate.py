"""DVC stage `evaluate` (see dvc.yaml); standalone: `python -m pipelines.evaluate [overrides]`."""

import hydra
from omegaconf import DictConfig

from recops.cli_support import exit_on_error
from recops.pipeline.stages import run_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        run_stage("evaluate", cfg)


if __name__ == "__main__":
    main()
