"""Credentials never reach a message or a log line; an unreachable or failing store is reported
as such (not as "no registered model"); user text is printed literally."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recops.redaction import install_log_redaction, redact

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SECRET = "hunter2-s3cret"


def test_redact_masks_passwords_and_secret_parameters() -> None:
    assert redact(f"http://alice:{SECRET}@host:5000/api") == "http://alice:***@host:5000/api"
    assert (
        redact(f"postgresql+psycopg2://u:{SECRET}@db/mlflow")
        == "postgresql+psycopg2://u:***@db/mlflow"
    )
    assert redact(f"s3://b/x?token={SECRET}&a=1") == "s3://b/x?token=***&a=1"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_log_records_are_redacted_with_their_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    logger = logging.getLogger("recops.test")
    with caplog.at_level(logging.INFO, logger="recops.test"):
        logger.info("store %s", f"http://bob:{SECRET}@h")
        try:
            raise ConnectionError(f"cannot reach http://bob:{SECRET}@h")
        except ConnectionError:
            logger.exception("failed")
    assert SECRET not in caplog.text and "http://bob:***@h" in caplog.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def failing_server() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 that answers every request 503 (an outage)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"service unavailable")

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def registry_list(port: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://alice:{SECRET}@127.0.0.1:{port}",
        "RECOPS_ROOT": str(PROJECT_ROOT),
        "PYTHONPATH": str(PROJECT_ROOT / "src"),
    }
    env.pop("MLFLOW_REGISTRY_URI", None)
    cmd = [
        sys.executable, "-m", "recops.cli", "registry", "list",
        f"paths.reports_dir={tmp_path}",
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.parametrize("kind", ["closed port", "server answering 503"])
def test_an_unreachable_store_is_named_without_its_password(
    kind: str, failing_server: int, tmp_path: Path
) -> None:
    port = free_port() if kind == "closed port" else failing_server
    proc = registry_list(port, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert SECRET not in out
    assert f"http://alice:***@127.0.0.1:{port}" in out and "unreachable" in out, out
    assert "train and register" not in out and "Traceback" not in out
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1, out


def test_error_lines_print_user_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from recops.cli_support import print_error

    print_error("column '[/bold]' not found; :x: [red]x[/red]")
    err = capsys.readouterr().err
    assert "column '[/bold]' not found; :x: [red]x[/red]" in err
