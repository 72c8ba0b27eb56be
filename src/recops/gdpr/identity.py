"""Salted user-id hashes: how erasures are recorded without the id in clear.

The salt is a random secret in a project file (git-ignored, kept by `recops backup`): without
it a hash cannot be tested against a list of guessed ids. The erasure list is the set of
hashes of erased users; the serving layer reads it at each sync and refuses those users a
personalised answer (`recops.serving.erasure`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SALT_BYTES = 32
LIST_VERSION = 1


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_salt(path: Path) -> bytes | None:
    """The project's salt, or None when it has none yet."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return bytes.fromhex(text) if text else None


def ensure_salt(path: Path) -> bytes:
    """The project's salt, created (random, owner-readable only) the first time."""
    salt = read_salt(path)
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
        _write_atomic(path, salt.hex() + "\n", mode=0o600)
    return salt


def user_hash(salt: bytes, user_id: str) -> str:
    """`sha256:<hex>` of salt + id: stable for one project, meaningless without the salt."""
    return "sha256:" + hashlib.sha256(salt + user_id.encode("utf-8")).hexdigest()


@dataclass
class ErasureList:
    """Hashes of erased users (`erasures.json`); replaced atomically when it grows."""

    path: Path

    def hashes(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        return {str(h) for h in data.get("hashes", [])}

    def add(self, digest: str) -> bool:
        """Add one hash; False when it was already listed (an erasure done before)."""
        current = self.hashes()
        if digest in current:
            return False
        payload = {
            "version": LIST_VERSION,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "hashes": sorted(current | {digest}),
        }
        _write_atomic(self.path, json.dumps(payload, indent=1) + "\n")
        return True
