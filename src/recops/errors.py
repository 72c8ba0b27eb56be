"""Errors a user can act on. Each message names the file, field or value at fault."""

from __future__ import annotations


class RecopsError(Exception):
    """Base class: anything the CLI prints as a clean one-line error instead of a traceback."""


class DataSourceError(RecopsError):
    """A source file is unreadable, empty or lacks a required column."""


class ConfigError(RecopsError):
    """A configuration value is missing or invalid."""


class UnknownIdError(RecopsError, KeyError):
    """A user or item id that the model has never seen."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelCapacityError(RecopsError):
    """A model refuses a problem size it cannot handle in memory."""


class RegistryError(RecopsError):
    """A registry operation cannot be done (missing alias, failed gate, ...)."""


class ArtifactIntegrityError(RegistryError):
    """A registered model's files are missing, or differ from the checksums recorded at
    registration (changed or truncated in the artifact store)."""


class StoreUnreachableError(RecopsError):
    """The MLflow tracking/registry store cannot be reached or answers with a server error."""
