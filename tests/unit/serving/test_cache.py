from __future__ import annotations

from recops.serving.cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lru_eviction_and_hit_counts() -> None:
    cache: TTLCache[str, int] = TTLCache(2, 60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)  # evicts b
    assert cache.get("b") is None and cache.get("c") == 3 and cache.get("a") == 1
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["evictions"], stats["size"]) == (3, 1, 1, 2)
    assert stats["hit_rate"] == 0.75


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10, 5, clock=clock)
    cache.put("a", 1)
    clock.now = 4.9
    assert cache.get("a") == 1
    clock.now = 5.0
    assert cache.get("a") is None
    assert cache.stats()["expirations"] == 1 and len(cache) == 0


def test_clear_and_disabled() -> None:
    cache: TTLCache[str, int] = TTLCache(10, 5)
    cache.put("a", 1)
    assert cache.clear() == 1 and cache.get("a") is None
    off: TTLCache[str, int] = TTLCache(0, 5)
    off.put("a", 1)
    assert not off.enabled and off.get("a") is None and len(off) == 0
