"""Train a model: `python -m pipelines.train model=als model.factors=128 data=movielens_small`.

Standalone (the default, `chain=true`) it ingests and prepares what it needs, trains,
evaluates, logs one MLflow run and registers the model (`register=false` skips that).
The DVC `train` stage passes `chain=false` and runs the training step only.
"""

import hydra
from omegaconf import DictConfig

from recops.cli_support import exit_on_error
from recops.pipeline.stages import run_chain, run_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        if cfg.chain:
            run_chain(cfg)
        else:
            run_stage("train", cfg)


if __name__ == "__main__":
    main()
