"""A deterministic synthetic e-commerce world: the embedded, offline default dataset.

World model (vectorised numpy, one seeded generator, so equal parameters give equal data):

- categories have power-law masses; every item belongs to one category and has Zipf popularity
  within it, so popularity is heavy-tailed both across and within categories;
- users have 1-3 preferred categories (drawn by category mass, Dirichlet weights) and a
  heavy-tailed activity level; activity comes in sessions that each focus on one preferred
  category: a view comes from the session's category with probability `taste_strength`,
  otherwise from global popularity. This is what lets collaborative filtering beat popularity;
- each item has a "complement" in its category, viewed right after it in `complement_rate` of
  views (sequential / co-view structure); `cart_rate` of views lead to a cart a few minutes
  later, `purchase_rate` of carts to a purchase;
- `shift` (for drift experiments) appends a later period in which a share of the catalogue is
  replaced by new items and a share of users re-draw their tastes from a tilted category mix.

`n_events` is the total over all periods (split by weeks); the realised count is within a few
percent of it. Timestamps are naive UTC datetime64[ns] at one-second resolution.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from recops.columns import Columns
from recops.data.sources.base import RawData, RawStream
from recops.errors import ConfigError

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_GENERATOR_VERSION = 1  # bump when the algorithm changes: it is part of the content hash
EVENT_TYPES = ("view", "cart", "purchase")
_VIEW, _CART, _PURCHASE = 0, 1, 2
_MAX_TASTES = 3
_VIEWS_PER_SESSION = 5.0
_SESSION_SPREAD_S = 900.0  # mean seconds from session start to a view
_COMPLEMENT_DELAY_S = 90.0
_CART_DELAY_S = 300.0
_PURCHASE_DELAY_S = 1200.0
_JOIN_FRACTION = 0.7  # users join during the first 70% of the base period
_ACTIVITY_SIGMA = 1.1  # lognormal activity: heavy-tailed events per user
_CATEGORY_EXPONENT = 0.8  # power law of category masses, relative to popularity_exponent
_USER_CHUNK = 200_000
_WEEK_S = 7 * 24 * 3600
_SIZE_PARAMS = ("n_users", "n_items", "n_events", "n_categories", "n_brands", "weeks")
_RATE_PARAMS = ("taste_strength", "cart_rate", "purchase_rate", "complement_rate")
_SHIFT_DEFAULTS: dict[str, float] = {"new_item_share": 0.2, "taste_mix": 0.5, "weeks": 2}

# "category: three nouns" entries, used for readable category names, titles and tags
_VOCABULARY = (
    "electronics: headphones, charger, speaker; books: novel, cookbook, atlas; "
    "home: lamp, cushion, rug; kitchen: kettle, pan, knife set; garden: planter, hose, shears; "
    "toys: puzzle, robot, plush bear; sports: yoga mat, dumbbell, racket; "
    "beauty: serum, lipstick, face mask; fashion: jacket, scarf, t-shirt; "
    "shoes: sneakers, boots, sandals; jewelry: ring, necklace, bracelet; "
    "grocery: coffee, olive oil, tea; pets: dog bed, cat toy, leash; "
    "office: notebook, desk chair, pen set; automotive: car mat, dash cam, wax; "
    "music: guitar, vinyl, ukulele; games: board game, controller, card game; "
    "health: vitamins, thermometer, massager; baby: stroller, bib, baby monitor; "
    "outdoor: tent, backpack, lantern"
)
_CATEGORIES = [
    (name.strip(), [noun.strip() for noun in nouns.split(",")])
    for name, nouns in (entry.split(":") for entry in _VOCABULARY.split(";"))
]
_ADJECTIVE_WORDS = (
    "classic compact deluxe eco smart vintage modern premium handmade portable essential "
    "organic urban sleek rustic bold"
)
_ADJECTIVES = np.array(_ADJECTIVE_WORDS.split(), dtype=object)
_BRAND_HEADS = ["Nor", "Vel", "Tri", "Ast", "Kal", "Zen", "Lum", "Bri", "Cor", "Dax", "Eno", "Fyr"]
_BRAND_TAILS = ["vik", "ora", "ton", "ex", "ia", "ant", "ello", "ara", "ix", "ust"]


@dataclass(frozen=True)
class _Shift:
    new_item_share: float
    taste_mix: float
    weeks: int


@dataclass(frozen=True)
class _Catalogue:
    """Item sampling tables for one period.

    Items are ordered by category, zero-probability items first within each category, so that
    clipping a sampled position into [first_positive, end) never yields an inactive item.
    Category c occupies the value range [c, c + 1] of `cum_within`.
    """

    order: IntArray
    cum_within: FloatArray
    first_positive: IntArray
    cat_end: IntArray
    global_order: IntArray
    cum_global: FloatArray

    def in_categories(self, cats: IntArray, rng: np.random.Generator) -> IntArray:
        pos = np.searchsorted(self.cum_within, cats + rng.random(cats.size), side="right")
        pos = np.clip(pos, self.first_positive[cats], self.cat_end[cats] - 1)
        return self.order[pos]

    def by_popularity(self, n: int, rng: np.random.Generator) -> IntArray:
        pos = np.searchsorted(self.cum_global, rng.random(n), side="right")
        return self.global_order[np.minimum(pos, self.cum_global.size - 1)]


@dataclass(frozen=True)
class _Users:
    pref_cat: IntArray  # (n_users, k) preferred categories
    pref_cum: FloatArray  # (n_users, k) cumulative weights over them
    n_pref: IntArray  # (n_users,) how many of the k slots are real
    activity: FloatArray  # (n_users,) share of events, sums to 1
    join_frac: FloatArray  # (n_users,) first-activity point, as a fraction of the base period


@dataclass
class SyntheticSource:
    """Hydra target `recops.data.sources.synthetic.SyntheticSource`; see the module docstring."""

    n_users: int = 5000
    n_items: int = 2000
    n_events: int = 200_000
    n_categories: int = 20
    n_brands: int = 60
    weeks: int = 8
    start: str = "2024-01-01"
    popularity_exponent: float = 1.0
    taste_strength: float = 0.85
    cart_rate: float = 0.1
    purchase_rate: float = 0.35
    complement_rate: float = 0.2
    seed: int = 42
    shift: Mapping[str, float] | None = None
    name: str = field(default="synthetic", init=False)

    def __post_init__(self) -> None:
        # normalise YAML/Hydra values (1e6, 1, DictConfig) so that origin and hash are canonical
        try:
            for key in (*_SIZE_PARAMS, "seed"):
                setattr(self, key, int(getattr(self, key)))
            for key in (*_RATE_PARAMS, "popularity_exponent"):
                setattr(self, key, float(getattr(self, key)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"synthetic: {key}={getattr(self, key)!r} is not a number") from exc
        self._validate()
        self._start_ns = _parse_start(self.start)
        self._shift = _parse_shift(self.shift)
        self.shift = None if self._shift is None else dict(vars(self._shift))

    def load(self) -> RawData:
        stream = self.stream(1 << 62)
        return RawData(next(stream.chunks()), stream.items, stream.origin, stream.content_hash)

    def stream(self, chunk_rows: int) -> RawStream:
        """Simulate the world once (compact integer arrays), then hand out event frames of
        `chunk_rows` rows: the string ids of a chunk exist only while it is ingested."""
        began = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        item_cat, base_prob, shift_prob = self._draw_catalogue(rng)
        user, item, ts, etype = self._simulate(rng, item_cat, base_prob, shift_prob)
        popularity = base_prob if shift_prob is None else base_prob + shift_prob
        items = self._items_frame(rng, item_cat, popularity)
        counts = np.bincount(etype, minlength=3)
        logger.info(
            "synthetic: %d events (%d views, %d carts, %d purchases), %d users, %d items "
            "(%d new in the shift period), %d weeks, in %.2fs",
            user.size, counts[_VIEW], counts[_CART], counts[_PURCHASE],
            np.count_nonzero(np.bincount(user)), item_cat.size, item_cat.size - self.n_items,
            self._total_weeks(), time.perf_counter() - began,
        )  # fmt: skip
        user_ids = pa.array(_ids("u", self.n_users), pa.string())
        item_ids = pa.array(_ids("i", item_cat.size), pa.string())

        def chunks() -> Iterator[pd.DataFrame]:
            for lo in range(0, max(user.size, 1), chunk_rows):
                part = slice(lo, lo + chunk_rows)
                yield self._events_frame(
                    user_ids.take(user[part]), item_ids.take(item[part]), ts[part], etype[part],
                    lo + 1,
                )  # fmt: skip

        return RawStream(
            chunks, items, self._origin(), self._content_hash(), int(user.size), self.name
        )

    def _simulate(
        self,
        rng: np.random.Generator,
        item_cat: IntArray,
        base_prob: FloatArray,
        shift_prob: FloatArray | None,
    ) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Sorted, de-duplicated (user, item, second, event type) arrays for all periods."""
        cat_mass = np.bincount(item_cat, weights=base_prob, minlength=self.n_categories).astype(
            np.float64
        )
        users = self._draw_users(rng, cat_mass)
        catalogue = _build_catalogue(item_cat, base_prob, self.n_categories)
        complement = _draw_complements(rng, catalogue, item_cat, np.arange(item_cat.size))
        base_s = self.weeks * _WEEK_S
        share = self.weeks / self._total_weeks()
        periods = [
            self._generate_period(rng, users, catalogue, complement, (0, base_s),
                                  users.join_frac * base_s, self.n_events * share)
        ]  # fmt: skip
        if self._shift is not None and shift_prob is not None:
            users = _shift_tastes(rng, users, self._shift.taste_mix, cat_mass)
            catalogue = _build_catalogue(item_cat, shift_prob, self.n_categories)
            complement = _refresh_complements(rng, catalogue, item_cat, shift_prob, complement)
            periods.append(
                self._generate_period(rng, users, catalogue, complement,
                                      (base_s, self._total_weeks() * _WEEK_S),
                                      np.full(self.n_users, float(base_s)),
                                      self.n_events * (1.0 - share))
            )  # fmt: skip
        user, item, ts, etype = (np.concatenate(parts) for parts in zip(*periods, strict=True))
        del periods
        user, item, ts, etype = _sort_and_dedupe(user, item, ts, etype)
        # compact while the chunks are handed out: 13 bytes per event instead of 32
        return user.astype(np.int32), item.astype(np.int32), ts, etype.astype(np.int8)

    def _total_weeks(self) -> int:
        return self.weeks + (self._shift.weeks if self._shift else 0)

    # ----------------------------------------------------------------- parameters

    def _params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def _origin(self) -> str:
        return "synthetic(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"

    def _content_hash(self) -> str:
        payload = {"generator": "recops.synthetic", "version": _GENERATOR_VERSION, **self._params()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _validate(self) -> None:
        for key in _SIZE_PARAMS:
            if getattr(self, key) < 1:
                raise ConfigError(f"synthetic: {key} must be >= 1, got {getattr(self, key)}")
        if self.n_items < self.n_categories:
            raise ConfigError(
                f"synthetic: n_items ({self.n_items}) must be >= n_categories ({self.n_categories})"
            )
        for key in _RATE_PARAMS:
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"synthetic: {key} must be in [0, 1], got {getattr(self, key)}")
        if self.popularity_exponent < 0:
            raise ConfigError(
                f"synthetic: popularity_exponent must be >= 0, got {self.popularity_exponent}"
            )

    # ----------------------------------------------------------------- world

    def _draw_catalogue(
        self, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray, FloatArray | None]:
        """Item categories, base-period popularity and (with a shift) shift-period popularity.

        Shift items are appended after the `n_items` base items: each replaces a random retired
        base item, taking over its category and popularity."""
        k, n = self.n_categories, self.n_items
        cat_mass = rng.permutation(_zipf(k, self.popularity_exponent * _CATEGORY_EXPONENT))
        size_weights = np.sqrt(cat_mass) / np.sqrt(cat_mass).sum()  # big categories, more items
        item_cat = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=size_weights)])
        item_cat = rng.permutation(item_cat)
        prob = np.zeros(n)
        for c in range(k):  # Zipf within each category, random rank order
            members = np.flatnonzero(item_cat == c)
            prob[members] = cat_mass[c] * rng.permutation(
                _zipf(members.size, self.popularity_exponent)
            )
        if self._shift is None:
            return item_cat, prob, None
        n_new = round(self._shift.new_item_share * n)
        retired = rng.choice(n, size=n_new, replace=False)
        shift_prob = np.concatenate([prob, prob[retired]])
        shift_prob[retired] = 0.0
        base_prob = np.concatenate([prob, np.zeros(n_new)])
        return np.concatenate([item_cat, item_cat[retired]]), base_prob, shift_prob

    def _draw_users(self, rng: np.random.Generator, cat_mass: FloatArray) -> _Users:
        pref_cat, pref_cum, n_pref = _draw_tastes(rng, cat_mass, self.n_users)
        activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, self.n_users)
        join_frac = rng.random(self.n_users) * _JOIN_FRACTION
        return _Users(pref_cat, pref_cum, n_pref, activity / activity.sum(), join_frac)

    def _generate_period(
        self,
        rng: np.random.Generator,
        users: _Users,
        catalogue: _Catalogue,
        complement: IntArray,
        span: tuple[int, int],
        join_s: FloatArray,
        n_events: float,
    ) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """(user, item, second, event type) arrays for one period, unsorted."""
        per_view = (1 + self.complement_rate) * (1 + self.cart_rate * (1 + self.purchase_rate))
        counts = rng.multinomial(round(n_events / per_view), users.activity)
        n_sessions = np.ceil(counts / _VIEWS_PER_SESSION).astype(np.int64)
        sess_user = np.repeat(np.arange(self.n_users), n_sessions)
        sess_start = join_s[sess_user] + rng.random(sess_user.size) * (span[1] - join_s[sess_user])
        sess_cat = _pick_tastes(rng, users, sess_user)

        user = np.repeat(np.arange(self.n_users), counts)
        first_session = np.cumsum(n_sessions) - n_sessions
        session = first_session[user] + (rng.random(user.size) * n_sessions[user]).astype(np.int64)
        taste = rng.random(user.size) < self.taste_strength
        item = np.empty(user.size, dtype=np.int64)
        item[taste] = catalogue.in_categories(sess_cat[session[taste]], rng)
        item[~taste] = catalogue.by_popularity(int((~taste).sum()), rng)
        ts = sess_start[session] + rng.exponential(_SESSION_SPREAD_S, user.size)

        follow = rng.random(user.size) < self.complement_rate
        user = np.concatenate([user, user[follow]])
        item = np.concatenate([item, complement[item[follow]]])
        ts = np.concatenate([ts, _later(rng, ts[follow], _COMPLEMENT_DELAY_S)])
        etype = np.zeros(user.size, dtype=np.int64)
        for src_type, new_type, rate, delay in (
            (_VIEW, _CART, self.cart_rate, _CART_DELAY_S),
            (_CART, _PURCHASE, self.purchase_rate, _PURCHASE_DELAY_S),
        ):
            chosen = np.flatnonzero(etype == src_type)
            chosen = chosen[rng.random(chosen.size) < rate]
            user = np.concatenate([user, user[chosen]])
            item = np.concatenate([item, item[chosen]])
            ts = np.concatenate([ts, _later(rng, ts[chosen], delay)])
            etype = np.concatenate([etype, np.full(chosen.size, new_type, dtype=np.int64)])
        inside = ts < span[1]  # what happens after the window is not observed
        seconds = np.floor(ts[inside]).astype(np.int64)
        return user[inside], item[inside], seconds, etype[inside]

    # ----------------------------------------------------------------- frames

    def _events_frame(
        self,
        user_ids: pa.Array,
        item_ids: pa.Array,
        ts: IntArray,
        etype: NDArray[np.integer[Any]],
        first_row: int,
    ) -> pd.DataFrame:
        """One chunk; the string columns are Arrow-backed (compact, validated by Arrow
        kernels: see `recops.data.parsing.arrow_strings`)."""
        stamps = (self._start_ns + ts * 1_000_000_000).view("datetime64[ns]")
        n = ts.size
        strings = pd.ArrowDtype(pa.string())
        return pd.DataFrame(
            {
                Columns.user: pd.Series(user_ids, dtype=strings),
                Columns.item: pd.Series(item_ids, dtype=strings),
                Columns.timestamp: stamps,
                Columns.event_type: pd.Series(
                    pa.array(EVENT_TYPES, pa.string()).take(etype), dtype=strings
                ),
                Columns.value: np.full(n, np.nan),
                Columns.weight: np.ones(n),
                Columns.source_row: np.arange(first_row, first_row + n, dtype=np.int64),
            },
            copy=False,  # no block consolidation: halves peak memory at 10M events
        )

    def _items_frame(
        self, rng: np.random.Generator, item_cat: IntArray, popularity: FloatArray
    ) -> pd.DataFrame:
        n, k = item_cat.size, self.n_categories
        cat_names = np.array([_category_name(c) for c in range(k)], dtype=object)
        nouns = np.array([_CATEGORIES[c % len(_CATEGORIES)][1] for c in range(k)], dtype=object)
        brand_names = np.array([_brand_name(b) for b in range(self.n_brands)], dtype=object)
        # brand b belongs to category b % k; categories left without a brand borrow any brand
        n_home = np.array([len(range(c, self.n_brands, k)) for c in range(k)])[item_cat]
        home = item_cat + k * rng.integers(0, np.maximum(n_home, 1))
        brand = np.where(n_home > 0, home, rng.integers(0, self.n_brands, n))
        noun = nouns[item_cat, rng.integers(0, 3, n)]
        adjective = _ADJECTIVES[rng.integers(0, _ADJECTIVES.size, n)]
        median = np.exp(rng.uniform(np.log(8.0), np.log(400.0), k))[item_cat]
        price = np.maximum(np.round(median * rng.lognormal(0.0, 0.45, n), 2), 0.99)
        band = np.where(
            price < 0.7 * median, "budget", np.where(price > 1.5 * median, "premium", "mid")
        )
        top = popularity >= np.quantile(popularity, 0.95)
        tags = cat_names[item_cat] + "|" + adjective + "|" + band.astype(object)
        tags = np.where(top, tags + "|bestseller", tags)
        return pd.DataFrame(
            {
                Columns.item: _ids("i", n),
                Columns.title: brand_names[brand] + " " + adjective + " " + noun,
                Columns.category: cat_names[item_cat],
                Columns.brand: brand_names[brand],
                Columns.price: price,
                Columns.tags: tags.astype(object),
            }
        )


# --------------------------------------------------------------------- helpers


def _zipf(n: int, exponent: float) -> FloatArray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def _later(rng: np.random.Generator, ts: FloatArray, mean_delay: float) -> FloatArray:
    return ts + 1.0 + rng.exponential(mean_delay, ts.size)


def _build_catalogue(item_cat: IntArray, prob: FloatArray, n_categories: int) -> _Catalogue:
    active = prob > 0
    order = np.lexsort((active, item_cat))
    cat_sorted = item_cat[order]
    cat_total = np.bincount(item_cat, weights=prob, minlength=n_categories)
    cum = np.cumsum(prob[order] / cat_total[cat_sorted])
    cat_start = np.searchsorted(cat_sorted, np.arange(n_categories))
    cat_end = np.searchsorted(cat_sorted, np.arange(n_categories), side="right")
    cum_before = np.concatenate([[0.0], cum])[cat_start]
    cum_within = cum - cum_before[cat_sorted] + cat_sorted
    first_positive = cat_start + np.bincount(item_cat[~active], minlength=n_categories)
    global_order = np.argsort(active, kind="stable")
    cum_global = np.cumsum(prob[global_order]) / prob.sum()
    return _Catalogue(order, cum_within, first_positive, cat_end, global_order, cum_global)


def _draw_complements(
    rng: np.random.Generator, catalogue: _Catalogue, item_cat: IntArray, items: IntArray
) -> IntArray:
    """A popular item of the same category, not the item itself where one redraw avoids it."""
    comp = catalogue.in_categories(item_cat[items], rng)
    same = np.flatnonzero(comp == items)
    comp[same] = catalogue.in_categories(item_cat[items[same]], rng)
    return comp


def _draw_tastes(
    rng: np.random.Generator, cat_mass: FloatArray, n_users: int
) -> tuple[IntArray, FloatArray, IntArray]:
    """1-3 categories per user, without replacement, by category mass (Gumbel top-k)."""
    k = min(_MAX_TASTES, cat_mass.size)
    logits = np.log(cat_mass)
    chunks = [np.empty((0, k), dtype=np.int64)]
    for lo in range(0, n_users, _USER_CHUNK):
        scores = logits + rng.gumbel(size=(min(_USER_CHUNK, n_users - lo), cat_mass.size))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        chunks.append(np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1)), 1))
    pref_cat = np.concatenate(chunks).astype(np.int64)
    n_pref = rng.integers(1, k + 1, n_users)
    weights = rng.dirichlet(np.ones(k), n_users) * (np.arange(k) < n_pref[:, None])
    pref_cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return pref_cat, pref_cum, n_pref


def _pick_tastes(rng: np.random.Generator, users: _Users, user_idx: IntArray) -> IntArray:
    """One preferred category per row of `user_idx`, by the user's taste weights."""
    u = rng.random(user_idx.size)
    slot = (users.pref_cum[user_idx] <= u[:, None]).sum(axis=1)
    slot = np.minimum(slot, users.n_pref[user_idx] - 1)
    return users.pref_cat[user_idx, slot]


def _refresh_complements(
    rng: np.random.Generator,
    catalogue: _Catalogue,
    item_cat: IntArray,
    prob: FloatArray,
    complement: IntArray,
) -> IntArray:
    """Keep complements that stay active; re-draw those pointing at retired items."""
    comp = complement.copy()
    stale = np.flatnonzero(prob[comp] == 0)
    comp[stale] = _draw_complements(rng, catalogue, item_cat, stale)
    return comp


def _shift_tastes(
    rng: np.random.Generator, users: _Users, taste_mix: float, cat_mass: FloatArray
) -> _Users:
    """Re-draw the tastes of a `taste_mix` share of users from a permuted category mass, so both
    individual and aggregate category mixes change."""
    movers = np.flatnonzero(rng.random(users.activity.size) < taste_mix)
    pref_cat, pref_cum, n_pref = users.pref_cat.copy(), users.pref_cum.copy(), users.n_pref.copy()
    pref_cat[movers], pref_cum[movers], n_pref[movers] = _draw_tastes(
        rng, rng.permutation(cat_mass), movers.size
    )
    return _Users(pref_cat, pref_cum, n_pref, users.activity, users.join_frac)


def _sort_and_dedupe(
    user: IntArray, item: IntArray, ts: IntArray, etype: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Order by (time, user, type, item) and drop exact (user, item, type, time) repeats.

    The four fields are packed into one int64 key when they fit (always, for realistic sizes):
    sorting one key is several times faster than a 4-key lexsort."""
    widths = [int(x.max(initial=0)).bit_length() for x in (item, etype, user)]
    if sum(widths) + int(ts.max(initial=0)).bit_length() > 63:
        order = np.lexsort((item, etype, user, ts))
        user, item, ts, etype = user[order], item[order], ts[order], etype[order]
        keep = np.ones(user.size, dtype=bool)
        keep[1:] = (
            (np.diff(ts) != 0) | (np.diff(user) != 0) | (np.diff(etype) != 0) | (np.diff(item) != 0)
        )
        return user[keep], item[keep], ts[keep], etype[keep]
    key = ts.copy()
    for values, width in zip((user, etype, item), widths[::-1], strict=True):
        key <<= width
        key |= values
    key.sort()
    key = key[np.concatenate([[True], np.diff(key) != 0])]
    fields_out = []
    for width in widths:  # item, etype, user: lowest bits first
        fields_out.append(key & ((1 << width) - 1))
        key >>= width
    item, etype, user = fields_out
    return user, item, key, etype


def _ids(prefix: str, n: int) -> NDArray[np.object_]:
    """Zero-padded string ids as an object array (indexing it shares the str objects)."""
    width = max(5, len(str(n - 1)))
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def _category_name(c: int) -> str:
    base = _CATEGORIES[c % len(_CATEGORIES)][0]
    return base if c < len(_CATEGORIES) else f"{base}_{c // len(_CATEGORIES)}"


def _brand_name(b: int) -> str:
    heads, tails = len(_BRAND_HEADS), len(_BRAND_TAILS)
    name = _BRAND_HEADS[b % heads] + _BRAND_TAILS[(b // heads) % tails]
    return name if b < heads * tails else f"{name} {b // (heads * tails) + 1}"


def _parse_start(start: str) -> int:
    try:
        stamp = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"synthetic: start {start!r} is not a date") from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value)


def _parse_shift(shift: Mapping[str, float] | None) -> _Shift | None:
    if shift is None:
        return None
    given = dict(shift)
    unknown = set(given) - set(_SHIFT_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"synthetic: unknown shift keys {sorted(unknown)}; allowed: {sorted(_SHIFT_DEFAULTS)}"
        )
    merged = {**_SHIFT_DEFAULTS, **given}
    result = _Shift(
        float(merged["new_item_share"]), float(merged["taste_mix"]), int(merged["weeks"])
    )
    if not 0.0 <= result.new_item_share < 1.0 or not 0.0 <= result.taste_mix <= 1.0:
        raise ConfigError(f"synthetic: shift shares must be in [0, 1), got {given}")
    if result.weeks < 1:
        raise ConfigError(f"synthetic: shift weeks must be >= 1, got {result.weeks}")
    return result
