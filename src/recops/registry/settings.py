"""The `registry` config section (`conf/registry/default.yaml`, the only home of its
defaults) as a typed, validated object built by `recops.settings.build`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig

from recops.config import find_project_root, resolve_path, shared_state_root
from recops.errors import ConfigError
from recops.settings import build_group

GATE_NAMES = ("stage", "artifacts", "loads", "smoke", "metric", "segments", "coverage")
#: The metric gate's policies: beat by a margin (point estimates), be significantly better
#: (paired test on the same users), or be non-inferior (CI of the difference above -margin).
DECISIONS = ("margin", "significant", "non_inferior")


@dataclass(frozen=True)
class GateLists:
    """Gates run before each move (`registry.gates`)."""

    challenger: tuple[str, ...]
    champion: tuple[str, ...]
    register: tuple[str, ...]
    rollback: tuple[str, ...]


@dataclass(frozen=True)
class SmokeSettings:
    """The smoke gate's batch: `users` known users + `unknown_user`, top-`k`."""

    users: int
    k: int
    unknown_user: str


@dataclass(frozen=True)
class RegistrySettings:
    """Everything the lifecycle commands read from `cfg.registry` (see its conf file)."""

    model_name: str
    metric: str
    margin: float
    margin_mode: str
    decision: str
    alpha: float
    confidence: float
    min_overlap: float
    candidate_alias: str
    champion_alias: str
    challenger_alias: str
    gates: GateLists
    segment_tolerance: float
    min_coverage: float | None
    coverage_metric: str
    smoke: SmokeSettings
    required_files: tuple[str, ...]
    keep_champions: int
    #: absolute once built by `from_config` (next to the registry's store)
    audit_log: Path
    lock_timeout_s: float
    lock_ttl_s: float
    list_metrics: tuple[str, ...]

    def __post_init__(self) -> None:
        self.validate()

    @property
    def stages(self) -> tuple[str, str, str]:
        """The lifecycle aliases, lowest first."""
        return (self.candidate_alias, self.challenger_alias, self.champion_alias)

    def target_alias(self, target: str) -> str:
        """The alias of a promotion target given as `challenger` / `champion` (or the alias)."""
        names = {"challenger": self.challenger_alias, "champion": self.champion_alias}
        alias = names.get(target, target)
        if alias not in (self.challenger_alias, self.champion_alias):
            raise ConfigError(f"--to must be challenger or champion, got {target!r}")
        return alias

    def gates_for(self, move: str) -> list[str]:
        """Gate names for `challenger`, `champion`, `register` or `rollback`."""
        key = {self.challenger_alias: "challenger", self.champion_alias: "champion"}.get(move, move)
        return list(getattr(self.gates, key, ()))

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path | None = None) -> RegistrySettings:
        """From the root config: `cfg.registry`, the audit log made absolute next to the
        registry (a `dvc exp run --temp` copy must not keep its own log)."""
        settings = build_group(cls, cfg, "registry")
        state = shared_state_root(root or find_project_root())
        return replace(settings, audit_log=resolve_path(settings.audit_log, state))

    def validate(self) -> None:
        for move, names in vars(self.gates).items():
            unknown = sorted(set(names) - set(GATE_NAMES))
            if unknown:
                raise ConfigError(
                    f"registry.gates.{move}: unknown gate(s) {unknown}; known: {list(GATE_NAMES)}"
                )
        if self.margin_mode not in ("absolute", "relative"):
            raise ConfigError(
                f"registry.margin_mode must be absolute or relative, got {self.margin_mode!r}"
            )
        if self.decision not in DECISIONS:
            raise ConfigError(
                f"registry.decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}"
            )
        for key, value in (("alpha", self.alpha), ("confidence", self.confidence)):
            if not 0 < value < 1:
                raise ConfigError(f"registry.{key} must be in (0, 1), got {value}")
        if not 0 <= self.min_overlap <= 1:
            raise ConfigError(f"registry.min_overlap must be in [0, 1], got {self.min_overlap}")
        if len(set(self.stages)) != 3:
            raise ConfigError(f"registry aliases must differ, got {self.stages}")
