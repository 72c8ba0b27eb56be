"""Which test users an evaluation scores: all of them, or a seeded sample stratified by segment.

Strata: `heavy` (training history above the light threshold), `light` (some history, at most
the threshold) and `cold` (none). A sample keeps each stratum's share of the users (at least
`min_per_stratum` of it, or all of it), and every sampled user carries the weight
population / sampled of its stratum, so weighted means estimate the full-population means
without bias even where a small stratum was over-sampled. The sample depends only on the test
users, the strata and the seed: two models evaluated on one split see the same users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

HEAVY, LIGHT, COLD = 0, 1, 2
STRATA: Final = ("heavy", "light", "cold")
#: Segments as unions of strata: `warm` users (any history) are the headline.
SEGMENT_STRATA: Final = {"warm": (HEAVY, LIGHT), "light": (LIGHT,), "cold": (COLD,)}


@dataclass(frozen=True)
class UserSample:
    """Sampled users (positions into the test users), their strata and weights."""

    index: np.ndarray
    strata: np.ndarray
    weights: np.ndarray
    n_population: int
    population_strata: dict[str, int]

    @property
    def sampled(self) -> bool:
        return len(self.index) < self.n_population

    def segment_mask(self, segment: str) -> np.ndarray:
        return np.isin(self.strata, SEGMENT_STRATA[segment])

    def describe(self) -> dict[str, object]:
        counts = {STRATA[s]: int(np.count_nonzero(self.strata == s)) for s in range(3)}
        return {
            "n_test_users": self.n_population,
            "n_evaluated": len(self.index),
            "sampled": self.sampled,
            "population": self.population_strata,
            "evaluated": counts,
        }


def user_strata(history: np.ndarray, light_max: int) -> np.ndarray:
    """Stratum per test user from its training history length (-1: no history)."""
    strata = np.full(len(history), HEAVY, dtype=np.int8)
    strata[history <= light_max] = LIGHT
    strata[history <= 0] = COLD
    return strata


def sample_users(
    strata: np.ndarray, max_users: int | None, min_per_stratum: int, seed: int
) -> UserSample:
    """Every user when there are at most `max_users` (or it is None), else a stratified
    sample of about `max_users`, sorted by position (deterministic for a seed)."""
    n = len(strata)
    population = {STRATA[s]: int(np.count_nonzero(strata == s)) for s in range(3)}
    if max_users is None or n <= max_users:
        return UserSample(np.arange(n), strata, np.ones(n), n, population)
    rng = np.random.default_rng(seed)
    picked, weights = [], []
    for stratum in range(3):
        members = np.flatnonzero(strata == stratum)
        if len(members) == 0:
            continue
        share = round(max_users * len(members) / n)
        take = min(len(members), max(share, min_per_stratum))
        chosen = np.sort(rng.choice(members, size=take, replace=False))
        picked.append(chosen)
        weights.append(np.full(take, len(members) / take))
    index = np.concatenate(picked)
    order = np.argsort(index, kind="stable")
    return UserSample(
        index[order], strata[index[order]], np.concatenate(weights)[order], n, population
    )
