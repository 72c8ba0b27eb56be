"""The `registry` config section as a typed object, with defaults for keys an older
`params.yaml` may lack (so a DVC stage composed before this section grew keeps working)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recops.config import find_project_root, resolve_path, shared_state_root
from recops.errors import ConfigError

GATE_NAMES = ("stage", "artifacts", "loads", "smoke", "metric", "segments", "coverage")
DEFAULT_GATES: dict[str, list[str]] = {
    "challenger": ["artifacts", "loads", "smoke"],
    "champion": ["stage", "artifacts", "loads", "smoke", "metric", "segments", "coverage"],
    "register": ["metric"],
    "rollback": ["artifacts"],
}
#: The metric gate's policies: beat by a margin (point estimates), be significantly better
#: (paired test on the same users), or be non-inferior (CI of the difference above -margin).
DECISIONS = ("margin", "significant", "non_inferior")
DEFAULT_FILES = ["recommender.json", "users.parquet", "items.parquet", "model/model.json"]


@dataclass(frozen=True)
class RegistrySettings:
    """Everything the lifecycle commands read from `cfg.registry`."""

    model_name: str
    metric: str
    margin: float
    margin_mode: str
    audit_log: Path
    candidate_alias: str = "candidate"
    challenger_alias: str = "challenger"
    champion_alias: str = "champion"
    gates: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_GATES))
    segment_tolerance: float = 0.02
    min_coverage: float | None = None
    coverage_metric: str = "coverage_at_10"
    smoke_users: int = 3
    smoke_k: int = 5
    unknown_user: str = "__recops_smoke_unknown__"
    required_files: tuple[str, ...] = tuple(DEFAULT_FILES)
    keep_champions: int = 3
    lock_timeout_s: float = 30.0
    lock_ttl_s: float = 600.0
    list_metrics: tuple[str, ...] = ("ndcg_at_10", "recall_at_10", "coverage_at_10")
    # the metric gate's decision policy (see conf/registry/default.yaml)
    decision: str = "margin"
    alpha: float = 0.05
    confidence: float = 0.95
    min_overlap: float = 0.5

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
        return list(self.gates.get(key, DEFAULT_GATES.get(key, [])))

    @classmethod
    def from_config(cls, cfg: DictConfig, root: Path | None = None) -> RegistrySettings:
        reg = _plain(cfg.registry)
        root = root or find_project_root()
        audit = reg.get("audit_log") or Path(str(cfg.paths.reports_dir)) / "registry/audit.jsonl"
        smoke = reg.get("smoke") or {}
        settings = cls(
            model_name=str(reg["model_name"]),
            metric=str(reg["metric"]),
            margin=float(reg["margin"]),
            margin_mode=str(reg.get("margin_mode", "absolute")),
            # next to the registry: a `dvc exp run --temp` copy must not keep its own log
            audit_log=resolve_path(str(audit), shared_state_root(root)),
            candidate_alias=str(reg.get("candidate_alias", "candidate")),
            challenger_alias=str(reg.get("challenger_alias", "challenger")),
            champion_alias=str(reg.get("champion_alias", "champion")),
            gates={**DEFAULT_GATES, **{k: list(v) for k, v in (reg.get("gates") or {}).items()}},
            segment_tolerance=float(reg.get("segment_tolerance", 0.02)),
            min_coverage=_optional_float(reg.get("min_coverage")),
            coverage_metric=str(reg.get("coverage_metric", "coverage_at_10")),
            smoke_users=int(smoke.get("users", 3)),
            smoke_k=int(smoke.get("k", 5)),
            unknown_user=str(smoke.get("unknown_user", "__recops_smoke_unknown__")),
            required_files=tuple(reg.get("required_files") or DEFAULT_FILES),
            keep_champions=int(reg.get("keep_champions", 3)),
            lock_timeout_s=float(reg.get("lock_timeout_s", 30)),
            lock_ttl_s=float(reg.get("lock_ttl_s", 600)),
            list_metrics=tuple(reg.get("list_metrics") or cls.list_metrics),
            decision=str(reg.get("decision", "margin")),
            alpha=_number("registry.alpha", reg.get("alpha", 0.05)),
            confidence=_number("registry.confidence", reg.get("confidence", 0.95)),
            min_overlap=_number("registry.min_overlap", reg.get("min_overlap", 0.5)),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        for move, names in self.gates.items():
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


def _plain(node: DictConfig) -> dict[str, Any]:
    data = OmegaConf.to_container(node, resolve=True)
    if not isinstance(data, dict):
        raise ConfigError("the registry config section must be a mapping")
    return {str(k): v for k, v in data.items()}


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
