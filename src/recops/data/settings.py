"""`worker.file`: how a dropped events file is read (the worker, `recops drift --current
FILE`, `recops validate --file`, GDPR erasure of dropped files), built by
`recops.settings.build`."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from recops.settings import build_group


@dataclass(frozen=True)
class FileMapping:
    columns: dict[str, str] | None  # null: `data.columns`, else the canonical names
    format: str
    timestamp_unit: str
    default_event_type: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> FileMapping:
        return build_group(cls, cfg, "worker.file")
