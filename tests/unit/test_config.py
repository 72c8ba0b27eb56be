"""Every config in conf/ composes (so none rots), and params.yaml is in sync with conf/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.utils import get_class
from omegaconf import OmegaConf

from recops.config import compose, config_hash, flatten, shared_state_root

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUP_OPTIONS = [
    (group.name, option.stem)
    for group in sorted(p for p in CONF.iterdir() if p.is_dir())
    for option in sorted(group.glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_config_option_composes(group: str, option: str) -> None:
    overrides = [f"{group}={option}"]
    if (group, option) == ("data", "events"):
        overrides.append("data.path=events.csv")
    cfg = compose(overrides)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    for node in (cfg[group], cfg[group].get("source", {})):
        if "_target_" in node:
            get_class(node._target_)  # the target class exists


def test_params_yaml_is_the_composed_default_config() -> None:
    cfg = compose([])
    OmegaConf.resolve(cfg)
    committed = yaml.safe_load((CONF.parent / "params.yaml").read_text())
    assert committed == OmegaConf.to_container(cfg), "params.yaml is stale: run `recops params`"


def test_flatten_and_hash() -> None:
    cfg = compose(["model.factors=7"])
    flat = flatten(cfg)
    assert flat["model.factors"] == 7
    assert flat["eval.ks"] == "[5, 10, 20]"
    assert config_hash(cfg.model) != config_hash(compose([]).model)


def test_shared_state_root_escapes_dvc_temp_copies(tmp_path: Path) -> None:
    temp = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "run" / "abc"
    assert shared_state_root(temp) == tmp_path / "repo"
    assert shared_state_root(tmp_path) == tmp_path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.factors=-1"], "model.factors=-1: must be an integer >= 1"),
        (["model.factors=1.5"], "model.factors=1.5: must be an integer >= 1"),
        (["model.regularization=-0.5"], "model.regularization=-0.5: must be a number >= 0"),
        (["eval.ks=[0]"], "eval.ks=[0]: must be a non-empty list of integers >= 1"),
        (["eval.ks=[]"], "eval.ks=[]: must be a non-empty list"),
        (["data=events"], "data.path is required but not set"),
        (["split.test_fraction=2"], "split.test_fraction=2: must be a number between 0 and 1"),
    ],
)
def test_bad_configs_fail_up_front_naming_the_key(overrides: list[str], message: str) -> None:
    from recops.config import validate_config
    from recops.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        validate_config(compose(overrides))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_every_shipped_model_config_is_valid(model: str) -> None:
    from recops.config import validate_config

    validate_config(compose([f"model={model}", "data=events", "data.path=x.csv"]))
