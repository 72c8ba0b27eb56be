"""Credentials never reach a message or a log line: `redact` masks the password of any
`scheme://user:password@host` URI and the value of secret-looking query parameters."""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]*)@"
)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)"
    r"(?P<value>[^&;#\s]+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with URI passwords and secret query values replaced by `***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)


def redact_record(record: logging.LogRecord) -> None:
    """Redact a log record in place: its message, and its exception (whose traceback would
    repeat the secret: then only the redacted exception line is kept)."""
    message = record.getMessage()
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and redact(str(exc)) != str(exc):
        record.exc_info, record.exc_text = None, None
        record.msg, record.args = f"{record.msg} ({type(exc).__name__}: {redact(str(exc))})", None


def install_log_redaction() -> None:
    """Every log record of the process (recops, MLflow, libraries) is redacted when created."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_recops_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory._recops_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
