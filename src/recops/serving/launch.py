"""`recops serve` (and `make serve`): check the address, then become `bentoml serve`.

The process execs BentoML's arbiter, so a SIGTERM (or Ctrl-C) to it, or to the whole process
group that `make serve` runs in, is a graceful stop of the arbiter and its workers. Workers
whose arbiter is killed outright (SIGKILL) exit by themselves within a sync interval
(`ServingRuntime`'s parent check), so a restart finds the port free. A restart while another
server holds the port fails with one line naming the process, before BentoML starts.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

from recops.serving.admin import TOKEN_ENV, is_loopback
from recops.serving.config import OVERRIDES_ENV, ServeConfig
from recops.serving.errors import PortInUseError

SERVICE_TARGET = "service:RecOps"


def port_owner(port: int) -> str | None:
    """`pid N (command line)` of the process listening on `port`, if it can be found: of a
    BentoML server (whose workers share the socket), the arbiter."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    pid = next(
        (
            c.pid
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        ),
        None,
    )
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        for parent in process.parents():  # a worker: name the topmost bentoml process
            if "bentoml" not in " ".join(parent.cmdline()):
                break
            process = parent
        return f"pid {process.pid} ({' '.join(process.cmdline())[:120]})"
    except psutil.Error:
        return f"pid {pid}"


def check_port(host: str, port: int) -> None:
    """Raise `PortInUseError` (one line) if `host:port` cannot be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise PortInUseError(f"cannot bind {host}:{port}: {exc.strerror}") from exc
            owner = port_owner(port)
            held = f" by {owner}" if owner else ""
            stop = f"kill -TERM {owner.split()[1]}" if owner else "stop it"
            raise PortInUseError(
                f"port {port} on {host} is already in use{held}: another server is running "
                f"({stop}), or choose another port (--port / PORT=)"
            ) from exc


def bentoml_argv(host: str, port: int, target: str = SERVICE_TARGET) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def serve_environment(overrides: list[str]) -> dict[str, str]:
    """This environment with the serve overrides appended to `$RECOPS_SERVE_OVERRIDES`."""
    env = dict(os.environ)
    if overrides:
        env[OVERRIDES_ENV] = " ".join(filter(None, [env.get(OVERRIDES_ENV, ""), *overrides]))
    return env


def admin_notice(host: str) -> str | None:
    """What to tell the user about admin access on this address (None: nothing)."""
    if is_loopback(host):
        return None
    if os.environ.get(TOKEN_ENV):
        return (
            f"serving on non-loopback address {host} with admin endpoints enabled "
            f"(token from {TOKEN_ENV})"
        )
    return f"serving on non-loopback address {host}: admin endpoints disabled (set {TOKEN_ENV})"


#: The pid `recops serve` has when it execs BentoML's arbiter (an exec keeps the pid): its
#: workers compare their parent with it, so a worker that starts after the arbiter died
#: (reparented before it could look) still knows it is an orphan.
ARBITER_ENV = "RECOPS_ARBITER_PID"


def arbiter_pid() -> int:
    """This BentoML worker's arbiter: `$RECOPS_ARBITER_PID` under `recops serve`, else the
    parent at start-up (a plain `bentoml serve`)."""
    value = os.environ.get(ARBITER_ENV, "")
    return int(value) if value.isdigit() else os.getppid()


def exec_bentoml(
    cfg: ServeConfig, root: Path, overrides: list[str], target: str = SERVICE_TARGET
) -> NoReturn:
    """Check the port, then replace this process with `bentoml serve` in `<root>/bentos`."""
    from recops.serving.bento import BENTOS_DIR, use_bentoml_home

    check_port(cfg.host, cfg.port)
    use_bentoml_home(root)
    env = {**serve_environment(overrides), ARBITER_ENV: str(os.getpid())}
    argv = bentoml_argv(cfg.host, cfg.port, target)
    os.chdir(root / BENTOS_DIR)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)
