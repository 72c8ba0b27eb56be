"""Serving config: the dataclass defaults mirror conf/serve/default.yaml; snapshot, project and
override precedence; bad values are refused with the key named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from recops.config import compose, to_dict
from recops.errors import ConfigError
from recops.serving.config import ServeConfig, load_serve_config, parse_overrides

from .conftest import shipped_values

PROJECT = Path(__file__).resolve().parents[3]


def test_the_conf_group_is_the_only_home_of_the_defaults() -> None:
    composed = ServeConfig.from_mapping(to_dict(compose([]).serve))
    raw = yaml.safe_load((PROJECT / "conf" / "serve" / "default.yaml").read_text())
    assert set(raw) == set(composed.to_dict())
    with pytest.raises(TypeError):
        ServeConfig()  # type: ignore[call-arg]  # no Python defaults to drift from conf/


def test_project_conf_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOPS_SERVE_OVERRIDES", "serve.cache.size=7 canary.share=0.25")
    cfg, origin = load_serve_config()
    assert cfg.cache.size == 7 and cfg.canary.share == 0.25
    assert origin.startswith("project conf/") and "overrides" in origin


def test_snapshot_wins_over_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECOPS_SERVE_OVERRIDES", raising=False)
    snap = tmp_path / "serve_config.json"
    shipped = ServeConfig.from_mapping(to_dict(compose([]).serve))
    snap.write_text(json.dumps(shipped.replace(mode="packaged", workers=1).to_dict()))
    cfg, origin = load_serve_config(snap, overrides="workers=3")
    assert (cfg.mode, cfg.workers) == ("packaged", 3)
    assert origin.startswith("snapshot")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "batch"}, "serve.mode must be one of"),
        ({"cache": {"size": "big"}}, "serve.cache.size must be int"),
        ({"cache": {"sise": 1}}, r"unknown key\(s\) in serve.cache: \['sise'\]"),
        ({"canary": {"share": 1.5}}, "canary.share must be in"),
        ({"limits": {"k_default": 300}}, "k_default <= k_max"),
        ({"poll_interval_s": 0}, "poll_interval_s must be > 0"),
    ],
)
def test_bad_values_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeConfig.from_mapping(shipped_values(values))


def test_override_syntax() -> None:
    assert parse_overrides("serve.a=1 b.c='x y'") == ["a=1", "b.c=x y"]
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides("oops")


def test_outside_a_project_without_a_snapshot_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECOPS_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^no serving config: no .*serve_config\.json"):
        load_serve_config(tmp_path / "serve_config.json", overrides="")
