"""The one typed-settings builder (`recops.settings.build`), and every config group's schema
against the shipped `conf/`: same keys (none unknown, none missing), every value typed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from omegaconf import OmegaConf, open_dict

from recops.backup.settings import BackupSection, GdprState, WorkerState
from recops.config import compose
from recops.errors import ConfigError
from recops.evaluation.settings import EvalSection
from recops.gdpr.settings import GdprSection
from recops.monitoring.settings import DriftSettings
from recops.quality.settings import QualitySettings
from recops.registry.settings import RegistrySettings
from recops.serving.config import ServeConfig
from recops.settings import build, build_view, field_paths, key_paths
from recops.worker.settings import WorkerSection

#: Every config group read through a settings schema: group -> schema.
SCHEMAS: dict[str, type] = {
    "serve": ServeConfig,
    "registry": RegistrySettings,
    "worker": WorkerSection,
    "drift": DriftSettings,
    "eval": EvalSection,
    "quality": QualitySettings,
    "gdpr": GdprSection,
    "backup": BackupSection,
}
#: Typed views a lower layer takes of a higher (or sibling) layer's section: view -> group.
VIEWS: dict[type, str] = {GdprState: "gdpr", WorkerState: "worker"}


@dataclass(frozen=True)
class Inner:
    size: int
    name: str | None


@dataclass(frozen=True)
class Outer:
    rate: float
    mode: Literal["a", "b"]
    tags: tuple[str, ...]
    limits: dict[str, float]
    path: Path
    inner: Inner
    optional: int = 3  # a field with a Python default may be left out


GOOD = {
    "rate": 1,
    "mode": "a",
    "tags": ["x", "y"],
    "limits": {"p95": 0.1},
    "path": "data/x",
    "inner": {"size": 2, "name": None},
}


def test_a_valid_mapping_builds_typed_values() -> None:
    built = build(Outer, GOOD, "g")
    assert built == Outer(1.0, "a", ("x", "y"), {"p95": 0.1}, Path("data/x"), Inner(2, None))
    assert isinstance(built.rate, float) and built.optional == 3


def test_a_dictconfig_is_resolved() -> None:
    cfg = OmegaConf.create({"root": "data", "g": {**GOOD, "path": "${root}/y"}})
    assert build(Outer, cfg.g, "g").path == Path("data/y")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"^unknown key\(s\) in g: \['colour'\] \(known: "),
        ({"rate": "fast"}, r"^g\.rate must be float, got 'fast'$"),
        ({"rate": True}, r"^g\.rate must be float, got True$"),
        ({"mode": "c"}, r"^g\.mode must be one of \['a', 'b'\], got 'c'$"),
        ({"tags": "x"}, r"^g\.tags must be a list of str, got 'x'$"),
        ({"tags": ["x", 3]}, r"^g\.tags\[1\] must be str, got 3$"),
        ({"limits": {"p95": "low"}}, r"^g\.limits\.p95 must be float, got 'low'$"),
        ({"inner": {"size": 1.5, "name": None}}, r"^g\.inner\.size must be int, got 1\.5$"),
        ({"inner": {"size": 1, "name": 7}}, r"^g\.inner\.name must be str \(or null\), got 7$"),
        ({"inner": {"size": 1, "name": None, "x": 0}}, r"^unknown key\(s\) in g\.inner: \['x'\]"),
        ({"inner": {"name": None}}, r"^g\.inner\.size is missing"),
        ({"inner": 5}, r"^g\.inner must be a mapping, got 5$"),
        ({"path": None}, r"^g\.path must not be null$"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_path(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build(Outer, {**GOOD, **change}, "g")
    assert "\n" not in str(caught.value)


def test_a_missing_key_is_named() -> None:
    values = {k: v for k, v in GOOD.items() if k != "mode"}
    with pytest.raises(ConfigError, match=r"^g\.mode is missing"):
        build(Outer, values, "g")


@pytest.mark.parametrize("group", sorted(SCHEMAS))
def test_the_shipped_conf_has_exactly_the_keys_of_each_schema(group: str) -> None:
    cfg = compose([])
    schema = SCHEMAS[group]
    declared = set(field_paths(schema, group))
    written = set(key_paths(cfg[group], group, schema))
    assert written - declared == set(), f"conf/{group} keys no settings field reads"
    assert declared - written == set(), f"settings fields conf/{group} does not set"
    build(schema, cfg[group], group)  # and every value has the declared type


def test_every_settings_object_builds_from_the_shipped_conf(tmp_path: Path) -> None:
    from recops.backup.settings import BackupSettings
    from recops.data.settings import FileMapping
    from recops.evaluation.settings import EvalSettings
    from recops.gdpr.settings import GdprSettings, ServedAnswer
    from recops.monitoring.policy import DriftPolicy
    from recops.worker.settings import WorkerSettings

    cfg = compose([])
    assert RegistrySettings.from_config(cfg, tmp_path).audit_log.is_absolute()
    assert WorkerSettings.from_config(cfg, tmp_path).work_dir.is_absolute()
    assert GdprSettings.from_config(cfg, tmp_path).model_name == cfg.registry.model_name
    assert BackupSettings.from_config(cfg, tmp_path).keep == cfg.backup.keep
    assert EvalSettings.from_config(cfg).threads == cfg.threads
    assert DriftPolicy.from_settings(DriftSettings.from_config(cfg)).bands["retrain_now"] > 0
    assert QualitySettings.from_config(cfg).fail_on == {}
    assert FileMapping.from_config(cfg).columns is None
    serve = ServeConfig.from_config(cfg)
    assert serve.alias == cfg.registry.champion_alias
    served = ServedAnswer.from_config(cfg, tmp_path)  # gdpr's typed view of four serve keys
    assert (served.model_name, served.alias) == (serve.model_name, serve.alias)
    assert (served.k, served.min_history) == (serve.limits.k_default, serve.min_history)
    assert served.precomputed == tmp_path / serve.precompute.path


def test_a_view_reads_only_its_keys_each_checked() -> None:
    @dataclass(frozen=True)
    class PathView:
        path: Path

    cfg = OmegaConf.create({"root": "data", "g": {**GOOD, "path": "${root}/y"}})
    assert build_view(PathView, cfg, "g") == PathView(Path("data/y"))  # the rest is not read
    with pytest.raises(ConfigError, match=r"^g\.size must be int, got 'big'$"):
        build_view(Inner, OmegaConf.create({"g": {"size": "big", "name": None}}), "g")
    with pytest.raises(ConfigError, match=r"^g\.size is missing"):
        build_view(Inner, OmegaConf.create({"g": {"name": None}}), "g")
    with pytest.raises(ConfigError, match=r"^the config has no `h` section"):
        build_view(Inner, cfg, "h")


@pytest.mark.parametrize("view", sorted(VIEWS, key=lambda v: v.__name__))
def test_a_view_is_a_part_of_its_sections_schema(view: type) -> None:
    """A view declares only keys of its group's schema, with the same types."""
    import typing

    group = VIEWS[view]
    section = typing.get_type_hints(SCHEMAS[group])
    for name, hint in typing.get_type_hints(view).items():
        assert section.get(name) == hint, f"{view.__name__}.{name} vs {group}.{name}"


def test_a_backup_keeps_the_state_files_gdpr_and_the_worker_use(tmp_path: Path) -> None:
    from recops.backup.settings import BackupSettings
    from recops.gdpr.settings import GdprSettings
    from recops.worker.settings import WorkerSettings

    cfg = compose([])
    assert BackupSettings.from_config(cfg, tmp_path).state_files == (
        GdprSettings.from_config(cfg, tmp_path).salt_file.parent,
        WorkerSettings.from_config(cfg, tmp_path).state_file,
    )


def test_a_missing_group_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^the config has no `quality` section .*recops params"):
        QualitySettings.from_config(OmegaConf.create({"paths": {"data_dir": "data"}}))


def test_a_params_yaml_older_than_conf_names_the_missing_key(tmp_path: Path) -> None:
    cfg = compose([])
    with open_dict(cfg):
        del cfg.registry["min_overlap"]
    with pytest.raises(ConfigError, match=r"^registry\.min_overlap is missing"):
        RegistrySettings.from_config(cfg, tmp_path)


def test_the_library_defaults_of_a_direct_call_are_the_shipped_conf() -> None:
    """`evaluate(rec, split)` and `validate(...)` called without settings use their dataclass
    defaults; those must be what `conf/` ships, so both paths give the same numbers."""
    from dataclasses import asdict

    from recops.evaluation.settings import EvalSettings
    from recops.quality.checks import Limits

    cfg = compose([])
    shipped = asdict(EvalSettings.from_config(cfg))
    library = asdict(EvalSettings())
    shipped.pop("threads"), library.pop("threads")  # `threads` is the machine's, not eval's
    assert library == shipped
    quality = QualitySettings.from_config(cfg)
    limits = Limits()
    for name in ("min_user_events", "min_item_events", "window_days", "future_tolerance_hours"):
        assert getattr(limits, name) == getattr(quality, name), name
