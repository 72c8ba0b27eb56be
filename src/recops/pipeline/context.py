"""Re-exports `recops.paths` (its former home) for code written against this module."""

from recops.paths import StagePaths, dataset_key, read_json, write_json

__all__ = ["StagePaths", "dataset_key", "read_json", "write_json"]
