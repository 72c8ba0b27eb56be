"""The errors the service turns into HTTP answers (each carries its status)."""

from __future__ import annotations

import re

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


#: `scheme://user:password@` in any text (a URI, an exception message quoting one).
_CREDENTIALS = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@]*):[^@\s/]*@")


def redacted(text: str) -> str:
    """`text` with the password of every URI in it replaced (`http://alice:***@host`)."""
    return _CREDENTIALS.sub(r"\1:***@", text)


def short_error(exc: BaseException) -> str:
    """The first line of an exception, at most 300 characters (MLflow's are long), with no
    password of a URI in it."""
    text = str(exc).strip().splitlines()
    return redacted(f"{type(exc).__name__}: {(text[0] if text else '')[:300]}")
