"""Search-space parsing, Optuna suggestions as Hydra overrides, and the best-config YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from recops.config import compose
from recops.errors import ConfigError
from recops.models.als import ALSModel
from recops.tuning.objective import epoch_chunks
from recops.tuning.space import (
    ParamSpec,
    best_model_config,
    defaults_in_space,
    epochs_upper_bound,
    format_value,
    params_to_overrides,
    parse_space,
    suggest_overrides,
)

SPACE: dict[str, Any] = {
    "model.factors": {"type": "int", "low": 16, "high": 256, "log": True},
    "model.regularization": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
    "model.iterations": {"type": "int", "low": 5, "high": 40, "step": 5},
    "model.similarity": {"type": "categorical", "choices": ["cosine", "bm25"]},
}


def parsed_value(override: str) -> Any:
    return OverridesParser.create().parse_overrides([override])[0].value()


def test_parse_space_builds_typed_specs() -> None:
    specs = {s.key: s for s in parse_space(SPACE)}
    assert specs["model.factors"] == ParamSpec("model.factors", "int", low=16, high=256, log=True)
    assert specs["model.regularization"].type == "float"
    assert specs["model.iterations"].step == 5
    assert specs["model.similarity"].choices == ("cosine", "bm25")


def test_every_shipped_space_parses() -> None:
    spaces = sorted(p.stem for p in (Path(__file__).parents[3] / "conf" / "sweep").glob("*.yaml"))
    assert {"als", "ease", "slist", "spark_als"} <= set(spaces)
    for model in spaces:
        assert parse_space(compose([f"model={model}"]).sweep.space), model


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("int", "expected a mapping"),
        ({"low": 1, "high": 2}, "type must be one of"),
        ({"type": "uniform", "low": 1, "high": 2}, "type must be one of"),
        ({"type": "int", "high": 2}, "low is required"),
        ({"type": "int", "low": 5, "high": 2}, "greater than high"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"type": "float", "low": 0.1, "high": 1.0, "log": "yes"}, "log must be true or false"),
        ({"type": "int", "low": 1.5, "high": 4}, "must be an integer"),
        ({"type": "float", "low": "a", "high": 1.0}, "must be a finite number"),
        ({"type": "float", "low": True, "high": 1.0}, "must be a finite number"),
        ({"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "step"),
        ({"type": "int", "lo": 1, "high": 4}, "unknown field"),
        ({"type": "categorical"}, "choices must be a non-empty list"),
        ({"type": "categorical", "choices": []}, "choices must be a non-empty list"),
        ({"type": "categorical", "choices": "ab"}, "choices must be a non-empty list"),
        ({"type": "categorical", "choices": [[1, 2]]}, "is not a scalar"),
    ],
)
def test_bad_spec_errors_name_the_key(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_space({"model.factors": spec})
    assert "sweep.space.model.factors" in str(info.value)


def test_empty_space_is_an_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        parse_space({})


def test_suggestions_are_hydra_overrides_within_bounds() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        overrides = suggest_overrides(trial, SPACE)
        values = {o.split("=", 1)[0]: parsed_value(o) for o in overrides}
        assert list(values) == list(SPACE)
        assert isinstance(values["model.factors"], int) and 16 <= values["model.factors"] <= 256
        assert 0.001 <= values["model.regularization"] <= 1.0
        assert values["model.iterations"] % 5 == 0
        assert values["model.similarity"] in ("cosine", "bm25")
        assert values == trial.params
        study.tell(trial, 0.0)


def test_fixed_trial_overrides_compose() -> None:
    trial = optuna.trial.FixedTrial(
        {"model.factors": 32, "model.regularization": 1e-05, "model.iterations": 10}
    )
    space = {k: v for k, v in SPACE.items() if k != "model.similarity"}
    space["model.regularization"] = {"type": "float", "low": 1e-6, "high": 1.0, "log": True}
    overrides = suggest_overrides(trial, space)
    assert overrides == ["model.factors=32", "model.regularization=1e-05", "model.iterations=10"]
    model = compose(overrides).model
    assert (model.factors, model.regularization, model.iterations) == (32, 1e-05, 10)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (0.5, "0.5"),
        ("bm25", "bm25"),
        ("true", "'true'"),
        ("a b", "'a b'"),
        ("it's", "'it\\'s'"),
    ],
)
def test_values_round_trip_through_the_override_grammar(value: Any, text: str) -> None:
    assert format_value(value) == text
    assert parsed_value(f"k={text}") == value


def test_params_to_overrides() -> None:
    params = {"model.factors": 64, "model.loss": "warp"}
    assert params_to_overrides(params) == ["model.factors=64", "model.loss=warp"]


def test_epochs_upper_bound_and_chunks() -> None:
    specs = parse_space(SPACE)
    assert epochs_upper_bound(specs, "model.iterations") == 40
    assert epochs_upper_bound(specs, "model.epochs") is None
    assert epoch_chunks(17, 8) == [8, 8, 1]
    assert epoch_chunks(16, 8) == [8, 8]
    assert epoch_chunks(3, 8) == [3]


def test_best_model_config_is_a_resolved_drop_in_model_file() -> None:
    config = best_model_config(compose(["model=als", "model.factors=48", "threads=3"]))
    assert next(iter(config)) == "_target_"
    assert config["factors"] == 48 and config["num_threads"] == 3  # resolved, not ${threads}
    model = instantiate(yaml.safe_load(yaml.safe_dump(config, sort_keys=False)))
    assert isinstance(model, ALSModel) and model.factors == 48


def test_contains_is_what_the_dimension_can_suggest() -> None:
    factors, regularization, iterations, similarity = parse_space(SPACE)
    assert factors.contains(16) and factors.contains(256) and not factors.contains(257)
    assert not factors.contains(32.5) and not factors.contains(True) and not factors.contains(None)
    assert regularization.contains(0.5) and not regularization.contains(0.0)
    assert iterations.contains(15) and not iterations.contains(12)  # off the step-5 grid
    assert not iterations.contains("15")
    assert similarity.contains("bm25") and not similarity.contains("tfidf")


def test_defaults_in_space_takes_the_config_values_the_space_can_suggest() -> None:
    cfg = compose(["model=als", "model.factors=64", "model.regularization=5.0"])
    specs = parse_space(
        {
            **SPACE,
            "+model.absent": {"type": "int", "low": 1, "high": 3},
            # an absent key is not a null default, even where null is a choice
            "+model.absent_choice": {"type": "categorical", "choices": [None, "a"]},
        }
    )
    # factors and iterations are inside their ranges; regularization 5.0 is above 1.0, the
    # ALS model has no similarity and no `absent*`: those are left to the sampler
    assert defaults_in_space(cfg, specs) == {
        "model.factors": 64,
        "model.iterations": cfg.model.iterations,
    }
