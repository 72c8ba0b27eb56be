"""Canary hashing: sticky, close to the configured share, nested when the share grows."""

from __future__ import annotations

from recops.serving.canary import bucket, in_canary

USERS = [f"user-{i}" for i in range(20_000)]


def test_assignment_is_sticky_and_deterministic() -> None:
    first = [in_canary(u, 0.1, "s") for u in USERS[:500]]
    assert first == [in_canary(u, 0.1, "s") for u in USERS[:500]]
    assert bucket("user-1", "s") == bucket("user-1", "s")
    assert 0.0 <= bucket("user-1", "s") < 1.0


def test_split_ratio_matches_the_share() -> None:
    for share in (0.05, 0.1, 0.5):
        ratio = sum(in_canary(u, share, "s") for u in USERS) / len(USERS)
        assert abs(ratio - share) < 0.01, (share, ratio)


def test_growing_the_share_only_adds_users() -> None:
    small = {u for u in USERS if in_canary(u, 0.1, "s")}
    large = {u for u in USERS if in_canary(u, 0.3, "s")}
    assert small < large


def test_salt_reshuffles_and_bounds() -> None:
    a = {u for u in USERS if in_canary(u, 0.2, "a")}
    b = {u for u in USERS if in_canary(u, 0.2, "b")}
    assert len(a & b) < 0.5 * len(a)
    assert not any(in_canary(u, 0.0, "s") for u in USERS[:100])
    assert all(in_canary(u, 1.0, "s") for u in USERS[:100])
