"""The registry config section: defaults for an older params.yaml, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from recops.config import compose
from recops.errors import ConfigError
from recops.registry.settings import DEFAULT_GATES, RegistrySettings

OLD_STYLE = {
    "registry": {
        "model_name": "m",
        "metric": "ndcg_at_10",
        "margin": 0.001,
        "margin_mode": "absolute",
        "candidate_alias": "candidate",
        "champion_alias": "champion",
    },
    "paths": {"reports_dir": "reports"},
}


def test_composed_config_parses_with_audit_log_under_reports(tmp_path: Path) -> None:
    cfg = compose([f"paths.reports_dir={tmp_path / 'out'}"])
    settings = RegistrySettings.from_config(cfg, tmp_path)
    assert settings.audit_log == tmp_path / "out" / "registry" / "audit.jsonl"
    assert settings.gates_for("champion") == DEFAULT_GATES["champion"]
    assert settings.gates_for("challenger") == ["artifacts", "loads", "smoke"]
    assert settings.min_coverage is None and settings.keep_champions == 3


def test_a_params_yaml_without_the_new_keys_gets_defaults(tmp_path: Path) -> None:
    settings = RegistrySettings.from_config(OmegaConf.create(OLD_STYLE), tmp_path)
    assert settings.challenger_alias == "challenger"
    assert settings.gates_for("register") == ["metric"]
    assert settings.audit_log == tmp_path / "reports" / "registry" / "audit.jsonl"


def test_unknown_gate_and_bad_target_are_config_errors(tmp_path: Path) -> None:
    bad = OmegaConf.create(OLD_STYLE)
    bad.registry.gates = {"champion": ["metric", "vibes"]}
    with pytest.raises(ConfigError, match="unknown gate"):
        RegistrySettings.from_config(bad, tmp_path)
    settings = RegistrySettings.from_config(OmegaConf.create(OLD_STYLE), tmp_path)
    assert settings.target_alias("champion") == "champion"
    with pytest.raises(ConfigError, match="challenger or champion"):
        settings.target_alias("candidate")
