"""The errors the service turns into HTTP answers (each carries its status)."""

from __future__ import annotations

from recops.errors import RecopsError
from recops.redaction import redact


class ServingError(RecopsError):
    """An error with the HTTP status the service answers with."""

    status = 500


class BadRequestError(ServingError):
    status = 400


class UnknownItemError(ServingError):
    status = 404


class NotReadyError(ServingError):
    status = 503


class PortInUseError(RecopsError):
    """`recops serve`: the address the server should bind is taken (another server?)."""


def short_error(exc: BaseException) -> str:
    """The first line of an exception, at most 300 characters (MLflow's are long), with no
    password of a URI in it."""
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {(text[0] if text else '')[:300]}")
