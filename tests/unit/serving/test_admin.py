"""Admin access rules, the bind address a worker reads from its socket, the port check of
`recops serve`."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from recops.serving.admin import AdminAccess, bound_host, is_loopback
from recops.serving.errors import PortInUseError, short_error
from recops.serving.launch import admin_notice, check_port


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))


def test_token_rules() -> None:
    bearer = {"authorization": "Bearer tok"}
    with_token = AdminAccess("0.0.0.0", "tok")
    assert with_token.check("/admin/reload", bearer) is None
    assert with_token.check("/cache/clear", {"authorization": "bearer tok"}) is None
    for headers in ({}, {"authorization": "Bearer to"}, {"authorization": "Basic tok"}):
        denied = with_token.check("/admin/reload", headers)
        assert denied is not None and denied[0] == 401
    assert with_token.check("/recommend", {}) is None
    open_local = AdminAccess("127.0.0.1", None)
    assert open_local.check("/admin/reload", {}) is None
    closed = AdminAccess("0.0.0.0", None).check("/admin/reload/status", bearer)
    assert closed is not None and closed[0] == 403


def test_the_bind_address_comes_from_the_workers_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert bound_host("10.1.2.3", ["worker", "--fd", str(sock.fileno())]) == "127.0.0.1"
        assert bound_host("10.1.2.3", [f"--fd={sock.fileno()}"]) == "127.0.0.1"
    assert bound_host("10.1.2.3", ["worker"]) == "10.1.2.3"


def test_a_public_address_with_admin_enabled_is_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.INFO, logger="recops.serving.admin"):
        AdminAccess("0.0.0.0", "tok").announce()
        AdminAccess("127.0.0.1", None).announce()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "non-loopback address 0.0.0.0" in warnings[0].getMessage()
    monkeypatch.delenv("RECOPS_ADMIN_TOKEN", raising=False)
    assert admin_notice("127.0.0.1") is None
    assert "admin endpoints disabled" in str(admin_notice("0.0.0.0"))


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            check_port("127.0.0.1", port)
    message = str(info.value)
    assert message.startswith(f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}")
    assert "\n" not in message
    check_port("127.0.0.1", port)  # free again


def test_registry_errors_are_one_redacted_line() -> None:
    message = "API request to http://alice:s3cret@127.0.0.1:5000/api/2.0 failed"
    short = short_error(RuntimeError(f"{message}\nsecond line"))
    assert short == "RuntimeError: API request to http://alice:***@127.0.0.1:5000/api/2.0 failed"
