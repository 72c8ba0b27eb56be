from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from recops.config import compose
from recops.errors import ConfigError
from recops.worker.settings import WorkerSettings, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
     ("45s", timedelta(seconds=45)), (90, timedelta(seconds=90)), ("2w", timedelta(weeks=2)),
     (None, None), ("null", None), ("0s", timedelta(0))],
)  # fmt: skip
def test_parse_duration(value: object, expected: timedelta | None) -> None:
    assert parse_duration(value, "k") == expected


def test_parse_duration_rejects_junk() -> None:
    with pytest.raises(ConfigError, match="k: 'soon'"):
        parse_duration("soon", "k")


def test_settings_from_the_default_config(tmp_path: Path) -> None:
    cfg = compose([f"worker.incoming_dir={tmp_path / 'in'}", "worker.promote_to=challenger"])
    settings = WorkerSettings.from_config(cfg, tmp_path)
    assert settings.incoming_dir == tmp_path / "in"
    assert settings.processed_dir == tmp_path / "in" / "processed"
    assert settings.retrain_every == timedelta(days=7)
    assert settings.retrain_on == ("retrain_soon", "retrain_now")
    assert settings.promote_to == "challenger" and settings.experiment == "recops-worker"


@pytest.mark.parametrize("override", ["worker.promote_to=prod", "worker.retrain_on=[soonish]"])
def test_bad_settings_are_rejected(override: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        WorkerSettings.from_config(compose([override]), tmp_path)


@pytest.mark.parametrize("text", ["7d", "2w", "12h", "30m", "45s", "0s", "90s"])
def test_format_duration_round_trips(text: str) -> None:
    duration = parse_duration(text, "k")
    assert duration is not None
    assert parse_duration(format_duration(duration), "k") == duration
    assert (
        format_duration(timedelta(days=7)) == "1w" and format_duration(timedelta(hours=36)) == "36h"
    )
