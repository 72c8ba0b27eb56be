"""The live service and the erasure list: a listed user gets the anonymous fallback (no model
row, no training history as seeds) once the sync thread re-read the list, which also clears
the answer caches; everyone else keeps the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.gdpr.identity import ErasureList, ensure_salt, user_hash
from recops.serving import erasure
from recops.serving.runtime import ServingRuntime
from recops.serving.served import Query

from ..serving.conftest import FakeSource, make_cfg, make_recommender


@pytest.fixture
def erasures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ErasureList, bytes]:
    salt = ensure_salt(tmp_path / "salt")
    active = erasure.Erasures(tmp_path / "erasures.json", tmp_path / "salt")
    monkeypatch.setattr(erasure, "_ACTIVE", active)
    return ErasureList(tmp_path / "erasures.json"), salt


def test_erased_user_is_answered_as_an_unknown_user(
    erasures: tuple[ErasureList, bytes],
) -> None:
    listed, salt = erasures
    source = FakeSource()
    source.versions, source.aliases = {"1": make_recommender(0)}, {"champion": "1"}
    runtime = ServingRuntime(make_cfg(), source)
    runtime.loader.refresh()
    runtime._sync()
    q = runtime.engine.query("u10", k=5)
    before = runtime.engine.recommend(q)
    assert before.answer.source == "model"
    assert runtime.engine.recommend(q).cached

    assert listed.add(user_hash(salt, "u10")) and not listed.add(user_hash(salt, "u10"))
    assert runtime.engine.recommend(q).answer.source == "model"  # not re-read yet
    runtime._sync()  # what the background thread does every sync_interval_s
    after = runtime.engine.recommend(q)
    assert after.answer.source == "fallback" and not after.cached
    stranger = runtime.engine.recommend(runtime.engine.query("never-seen", k=5))
    assert after.answer.ids.tolist() == stranger.answer.ids.tolist()
    assert runtime.engine.recommend(runtime.engine.query("u11", k=5)).answer.source == "model"
    assert runtime.loader.slots.champion is not None
    assert runtime.loader.slots.champion.answer(Query("u10", 5)).source == "fallback"


def test_no_list_means_nobody_is_erased(tmp_path: Path) -> None:
    nothing = erasure.Erasures(tmp_path / "missing.json", tmp_path / "missing-salt")
    assert nothing.refresh() is False and not nothing.is_erased("u10")


def test_hashes_depend_on_the_salt_and_hide_the_id(tmp_path: Path) -> None:
    salt = ensure_salt(tmp_path / "salt")
    assert ensure_salt(tmp_path / "salt") == salt  # created once
    digest = user_hash(salt, "alice")
    assert digest.startswith("sha256:") and "alice" not in digest
    assert digest != user_hash(b"other salt", "alice")
    assert (tmp_path / "salt").stat().st_mode & 0o077 == 0  # owner-only
