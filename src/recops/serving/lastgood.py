"""A local copy of the last champion that loaded: what a restart serves (reporting `degraded`)
when the champion cannot load and no past champion from the registry can either, or when
the registry is unreachable.

The copy is the recommender's plain files (`Recommender.save`, loaded with the installed code)
plus `serving.json` (which version it is) in `<serve.last_good_dir>/v<version>`; `current.json`
names the current copy. Writers (the workers of one or more servers) take a file lock; the
pointer is replaced atomically, so a reader sees either the old or the new copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from recops.models.recommender import Recommender
from recops.serving.refs import ModelRef

log = logging.getLogger(__name__)
POINTER = "current.json"
SOURCE = "last-good copy"


class LastGoodStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def current(self) -> ModelRef | None:
        """The version the copy holds (None: no copy)."""
        try:
            data = json.loads((self.folder / POINTER).read_text())
        except (OSError, ValueError):
            return None
        return ModelRef.from_dict({**data.get("ref", {}), "source": SOURCE})

    def save(self, ref: ModelRef, recommender: Recommender) -> bool:
        """Make `ref` the copy (False: it already is). Older copies are removed."""
        with self._locked():
            held = self.current()
            if held is not None and (held.key, held.run_id) == (ref.key, ref.run_id):
                return False
            name = f"v{ref.version}"
            target = self.folder / name
            shutil.rmtree(target, ignore_errors=True)
            recommender.save(target / "recommender")
            saved_at = datetime.now(UTC).isoformat(timespec="seconds")
            pointer = {"dir": name, "ref": ref.to_dict(), "saved_at": saved_at}
            tmp = self.folder / f".{POINTER}.{os.getpid()}"
            tmp.write_text(json.dumps(pointer, indent=2))
            os.replace(tmp, self.folder / POINTER)
            for old in self.folder.glob("v*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
        log.info("kept a local copy of %s in %s", ref.key, target)
        return True

    def load(self) -> tuple[ModelRef, Recommender] | None:
        """The copy (None: there is none)."""
        with self._locked():
            ref = self.current()
            if ref is None:
                return None
            data = json.loads((self.folder / POINTER).read_text())
            return ref, Recommender.load(self.folder / str(data["dir"]) / "recommender")
