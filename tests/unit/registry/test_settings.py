"""The registry config section: built strictly from conf/ (its only home of defaults),
validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from recops.config import compose
from recops.errors import ConfigError
from recops.registry.settings import RegistrySettings


def test_composed_config_parses_with_audit_log_under_reports(tmp_path: Path) -> None:
    cfg = compose([f"paths.reports_dir={tmp_path / 'out'}"])
    settings = RegistrySettings.from_config(cfg, tmp_path)
    assert settings.audit_log == tmp_path / "out" / "registry" / "audit.jsonl"
    assert settings.gates_for("champion") == list(cfg.registry.gates.champion)
    assert settings.gates_for("challenger") == ["artifacts", "loads", "smoke"]
    assert settings.gates_for("register") == ["metric"]
    assert settings.min_coverage is None and settings.keep_champions == 3


def test_a_params_yaml_without_a_newer_key_is_one_clear_error(tmp_path: Path) -> None:
    cfg = compose([])
    with open_dict(cfg):
        del cfg.registry["challenger_alias"]
    with pytest.raises(ConfigError, match=r"registry\.challenger_alias is missing.*recops params"):
        RegistrySettings.from_config(cfg, tmp_path)


def test_unknown_gate_and_bad_target_are_config_errors(tmp_path: Path) -> None:
    bad = compose(["registry.gates.champion=[metric,vibes]"])
    with pytest.raises(ConfigError, match="unknown gate"):
        RegistrySettings.from_config(bad, tmp_path)
    settings = RegistrySettings.from_config(compose([]), tmp_path)
    assert settings.target_alias("champion") == "champion"
    with pytest.raises(ConfigError, match="challenger or champion"):
        settings.target_alias("candidate")
