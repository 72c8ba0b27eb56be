"""DVC stage `drift` (see dvc.yaml); standalone: `python -m pipelines.drift [overrides]`."""

import hydra
from omegaconf import DictConfig

from recops.cli_support import exit_on_error
from recops.pipeline.stages import run_stage
from recops.preload import preload_in_background


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    preload_in_background("evidently", "evidently.presets")  # overlaps reading the windows
    with exit_on_error():
        run_stage("drift", cfg)


if __name__ == "__main__":
    main()
