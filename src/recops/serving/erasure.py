"""Erased users in the live service (`recops gdpr delete-user`).

The erasure list (salted hashes, `gdpr.erasure_list`) is re-read whenever it changes: each
worker's sync thread calls `refresh()` every `sync_interval_s` and clears its answer caches
when the list grew. A request for a listed user gets the fallback as an unknown user would
(no model row, no training history as seeds), whatever the loaded model still holds, until a
reload brings a version without them. Outside a project (a bento run elsewhere) the list is
looked for at `$RECOPS_ERASURE_LIST` / `$RECOPS_GDPR_SALT`, else there is none.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from recops.gdpr.identity import ErasureList, read_salt, user_hash

log = logging.getLogger(__name__)
LIST_ENV, SALT_ENV = "RECOPS_ERASURE_LIST", "RECOPS_GDPR_SALT"


def _project_paths() -> tuple[Path | None, Path | None]:
    if os.environ.get(LIST_ENV):
        return Path(os.environ[LIST_ENV]), Path(os.environ.get(SALT_ENV, ""))
    try:
        from recops.config import compose, find_project_root
        from recops.gdpr.settings import GdprSettings

        root = find_project_root()
        settings = GdprSettings.from_config(compose([]), root)
    except Exception as exc:  # not in a project: no erasure list
        log.info("no GDPR erasure list (%s)", exc)
        return None, None
    return settings.erasure_list, settings.salt_file


class Erasures:
    """The current erasure list of this process."""

    def __init__(self, list_path: Path | None = None, salt_path: Path | None = None) -> None:
        self._paths = (list_path, salt_path)
        self._resolved = list_path is not None
        self._stamp: tuple[int, int] | None = None
        self._salt: bytes | None = None
        self._hashes: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-read the list if its file changed; True when the set of erased users changed."""
        with self._lock:
            if not self._resolved:
                self._paths, self._resolved = _project_paths(), True
            list_path, salt_path = self._paths
            if list_path is None or salt_path is None:
                return False
            stamp = (_mtime(list_path), _mtime(salt_path))
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            hashes = frozenset(ErasureList(list_path).hashes())
            self._salt = read_salt(salt_path)
            changed = hashes != self._hashes
            self._hashes = hashes
        if changed:
            log.info("erasure list: %d erased user(s)", len(hashes))
        return changed

    def is_erased(self, user_id: str) -> bool:
        hashes, salt = self._hashes, self._salt
        return bool(hashes) and salt is not None and user_hash(salt, user_id) in hashes


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


_ACTIVE = Erasures()


def active() -> Erasures:
    """This process's erasure list (refreshed by the serving runtime's sync thread)."""
    return _ACTIVE


def is_erased(user_id: str) -> bool:
    return _ACTIVE.is_erased(user_id)
