"""Which model version is served (the errors are in `recops.serving.errors`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelRef:
    """A registered model version as resolved from an alias (or packed into a bento)."""

    model_name: str
    version: str | None
    alias: str
    source: str  # registry | packaged
    run_id: str | None = None
    model_type: str | None = None
    data_snapshot: str | None = None
    uri: str | None = None

    @property
    def key(self) -> str:
        """Identity of the artifact (the same version under another alias is the same model)."""
        return f"{self.model_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRef:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})
