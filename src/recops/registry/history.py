"""Registry state kept in registered-model tags.

- `recops.champion_history`: JSON list of past champion versions, oldest first (the current
  champion is not in it). Promotion pushes the replaced champion; rollback pops.
- `recops.alias_state`: JSON {alias: version} as recops last left it. An alias that differs
  from it on the next recops command was moved outside recops (the MLflow UI).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

HISTORY_TAG = "recops.champion_history"
STATE_TAG = "recops.alias_state"
#: History entries kept (tags hold up to 100k characters; this is far below).
MAX_HISTORY = 500


@dataclass(frozen=True)
class AliasChange:
    alias: str
    from_version: str | None
    to_version: str | None


def read_history(client: MlflowClient, name: str) -> list[str]:
    text = client.get_registered_model(name).tags.get(HISTORY_TAG)
    if not text:
        return []
    try:
        values = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in values] if isinstance(values, list) else []


def write_history(client: MlflowClient, name: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-MAX_HISTORY:]))


def pushed(history: list[str], version: str | None) -> list[str]:
    """`history` with the replaced champion `version` appended (no immediate repeats)."""
    if version is None or (history and history[-1] == version):
        return list(history)
    return [*history, version]


def after_champion_moved(history: list[str], old: str | None, new: str | None) -> list[str]:
    """History after a champion move recops did not make.

    Moving the champion back to the last past champion is a rollback (pop); any other move
    is a promotion (push the replaced champion).
    """
    if new is not None and history and history[-1] == new:
        return history[:-1]
    if old is not None and old != new:
        return pushed(history, old)
    return list(history)


def recent_champions(history: list[str], keep: int) -> list[str]:
    """The last `keep` distinct past champions, most recent first."""
    seen: list[str] = []
    for version in reversed(history):
        if len(seen) >= keep:
            break
        if version not in seen:
            seen.append(version)
    return seen


def read_state(client: MlflowClient, name: str) -> dict[str, str] | None:
    """The alias state recops last wrote, or None if it never did (a fresh baseline)."""
    text = client.get_registered_model(name).tags.get(STATE_TAG)
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else None


def write_state(client: MlflowClient, name: str, aliases: dict[str, str]) -> None:
    client.set_registered_model_tag(name, STATE_TAG, json.dumps(aliases, sort_keys=True))


def alias_changes(known: dict[str, str], current: dict[str, str]) -> list[AliasChange]:
    """Aliases set, moved or deleted since `known`."""
    return [
        AliasChange(alias, known.get(alias), current.get(alias))
        for alias in sorted(set(known) | set(current))
        if known.get(alias) != current.get(alias)
    ]


def rollback_target(
    history: list[str], current: str | None, usable: Callable[[str], bool]
) -> tuple[str | None, list[str], list[str]]:
    """(version to go back to, history after it is popped, skipped archived/deleted versions).

    Walks back from the most recent past champion, skipping the current champion and
    versions that were archived or deleted (they are dropped from the history).
    """
    skipped: list[str] = []
    for index in range(len(history) - 1, -1, -1):
        version = history[index]
        if version == current:
            continue
        if not usable(version):
            skipped.append(version)
            continue
        return version, history[:index], skipped
    return None, [], skipped
