"""Canary split: a salted hash puts each user at a fixed point of [0, 1).

Users below `share` are served by the challenger. The split is sticky (the same user always
lands in the same arm, in every worker and after restarts) and nested: raising the share only
adds users to the canary, never moves canary users back.
"""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def bucket(user_id: str, salt: str) -> float:
    """The user's fixed point in [0, 1) for this salt (uniform over users)."""
    digest = hashlib.blake2b(f"{salt}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_canary(user_id: str, share: float, salt: str) -> bool:
    """Whether the challenger serves this user at canary `share`."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    return bucket(user_id, salt) < share
