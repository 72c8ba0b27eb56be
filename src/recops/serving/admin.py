"""Who may call the admin endpoints (`POST /admin/reload`, `/cache/clear`, `/admin/...`).

With `$RECOPS_ADMIN_TOKEN` set, a request needs `Authorization: Bearer <token>` (compared in
constant time). Without it, the admin endpoints are open only when the server binds a
loopback address, and disabled (403) otherwise. The bind address is read from the listening
socket BentoML hands its workers (`--fd`), so `bentoml serve ... --host 0.0.0.0` is seen as
such whatever the config says.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)
TOKEN_ENV = "RECOPS_ADMIN_TOKEN"
ADMIN_PATHS = ("/admin/", "/cache/clear")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bound_host(default: str, argv: Sequence[str] | None = None) -> str:
    """The address of the socket a BentoML worker serves (`--fd N`), else `default`."""
    args = list(sys.argv if argv is None else argv)
    fd = None
    for i, arg in enumerate(args):
        if arg == "--fd" and i + 1 < len(args):
            fd = args[i + 1]
        elif arg.startswith("--fd="):
            fd = arg.split("=", 1)[1]
    if fd is None or not fd.isdigit():
        return default
    try:
        with socket.socket(fileno=os.dup(int(fd))) as sock:
            return str(sock.getsockname()[0])
    except OSError:
        return default


@dataclass(frozen=True)
class AdminAccess:
    host: str
    token: str | None

    @classmethod
    def from_env(cls, host: str) -> AdminAccess:
        return cls(host, os.environ.get(TOKEN_ENV) or None)

    @property
    def enabled(self) -> bool:
        return self.token is not None or is_loopback(self.host)

    def check(self, path: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
        """None when the request may pass, else (status, message)."""
        if not path.startswith(ADMIN_PATHS):
            return None
        if self.token is None:
            if is_loopback(self.host):
                return None
            return 403, (
                f"admin endpoints are disabled: the server listens on {self.host} and "
                f"{TOKEN_ENV} is not set"
            )
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return None
        return 401, f"admin endpoints need the header `Authorization: Bearer <{TOKEN_ENV}>`"

    def announce(self) -> None:
        """Log how admin access is set up (a warning when it is reachable from the network)."""
        if is_loopback(self.host):
            log.info("admin endpoints: loopback only (%s)", self.host)
        elif self.token is not None:
            log.warning(
                "serving on non-loopback address %s with admin endpoints enabled "
                "(token from %s): keep the token secret, prefer a private network",
                self.host,
                TOKEN_ENV,
            )
        else:
            log.warning(
                "serving on non-loopback address %s: admin endpoints are disabled (set %s)",
                self.host,
                TOKEN_ENV,
            )
