from __future__ import annotations

import json
from pathlib import Path

from recops.serving.shared import WorkerBoard


def test_snapshots_of_live_workers_only(tmp_path: Path) -> None:
    board = WorkerBoard(tmp_path)
    board.publish("stats", {"n": 1})
    # another live worker (this test's parent process) and a dead one
    import os

    (tmp_path / f"stats-{os.getppid()}.json").write_text(json.dumps({"n": 2}))
    (tmp_path / "stats-999999999.json").write_text(json.dumps({"n": 3}))
    got = board.collect("stats", {"n": 0})
    assert sorted(g["n"] for g in got) == [0, 2]  # own fresh snapshot replaces the published one
    assert not (tmp_path / "stats-999999999.json").exists()


def test_commands_are_shared_through_the_folder(tmp_path: Path) -> None:
    a, b = WorkerBoard(tmp_path), WorkerBoard(tmp_path)
    assert a.commands() == {}
    assert a.bump("reload") == 1 and b.bump("reload") == 2
    assert b.commands() == {"reload": 2}


def test_no_folder_means_this_process_only() -> None:
    board = WorkerBoard(None)
    board.publish("stats", {"n": 1})
    assert board.collect("stats", {"n": 0}) == [{"n": 0}]
    assert board.bump("reload") == 1 and board.commands() == {"reload": 1}
    assert not board.shared
