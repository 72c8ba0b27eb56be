"""The errors the service turns into HTTP answers (each carries its status)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from recops.errors import RecopsError


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


def redacted(uri: str) -> str:
    """`uri` without the password of its user info (`http://alice:***@host`)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def short_error(exc: BaseException) -> str:
    """The first line of an exception, at most 300 characters (MLflow's are long)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {(text[0] if text else '')[:300]}"
