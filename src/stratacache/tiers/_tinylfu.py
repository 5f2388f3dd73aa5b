"""W-TinyLFU eviction for the memory tier (Einziger, Friedman & Manes; Caffeine's design).

Written by hand because no maintained pure-Python W-TinyLFU fits here: the policy must
speak the tier's interface (``record``/``on_hit``/``insert``/``remove``/``victim``) and run
under the tier's lock against the tier's injectable clock, while theine keeps its policy in
Rust behind its own buffers and timer wheel. The layout follows Caffeine:

* an admission *window* (LRU, 1% of capacity to start) absorbs bursts of new keys;
* the *main* space is a segmented LRU: *probation* (~20%) and *protected* (~80%);
* a key leaving the window competes with probation's LRU victim and enters main only if
  a Count-Min sketch says it is requested more often (TinyLFU admission), so a scan of
  one-off keys cannot flush the keys read often;
* a hill climber resizes the window once per sample: bigger when recency pays (the hit
  rate rises as it grows), smaller when frequency does.

Segments are ``OrderedDict`` s (LRU moves in C). The sketch is one ``bytearray`` of four
rows of counters saturating at 15 (Caffeine's 4-bit counters), indexed by 16-bit slices of
the key's built-in ``hash()`` (SipHash for ``str``, cached on the object): recording an
access allocates nothing.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict

__all__ = ["TinyLfuPolicy"]

_PERCENT_MAIN = 0.99
_PERCENT_PROTECTED = 0.80
_MAX_COUNT = 15
_WIDTH_FACTOR = 4
"""Counters per row per entry of capacity: 4x keeps collisions rare for ~1 byte a key."""
_SAMPLE_FACTOR = 10
"""Age after ``10 x capacity`` (rounded up to a power of two) additions: the paper's W."""
_HASHDOS_THRESHOLD = 6
_STEP_PERCENT = 0.10
_STEP_DECAY = 0.98
_RESTART_THRESHOLD = 0.05
_GROW_Z = 1.0
"""Grow the window only on a hit-rate change above 1 sigma of sampling noise (see _climb)."""
_HALVE = bytes(i >> 1 for i in range(256))
_ODD = bytes(i & 1 for i in range(256))


class TinyLfuPolicy:
    """Window LRU + segmented-LRU main space, TinyLFU admission and an adaptive window.

    Every resident key lives in exactly one of ``_window``, ``_probation``, ``_protected``
    (each least recently used first). The tier calls every method with its lock held.
    """

    __slots__ = (
        "_additions",
        "_hits",
        "_mask",
        "_misses",
        "_prev_rate",
        "_probation",
        "_protected",
        "_protected_max",
        "_rng",
        "_sample_size",
        "_step",
        "_table",
        "_wide",
        "_width",
        "_window",
        "_window_max",
        "max_size",
    )

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size = max(0, max_size)
        self._window: OrderedDict[str, None] = OrderedDict()
        self._probation: OrderedDict[str, None] = OrderedDict()
        self._protected: OrderedDict[str, None] = OrderedDict()
        width = 16
        while width < _WIDTH_FACTOR * max_size:
            width <<= 1
        self._width = width
        self._mask = width - 1
        self._wide = width > 1 << 16  # 16-bit slices of one 64-bit hash no longer suffice
        self._table = bytearray(4 * width)
        # Also the hill climber's sample, in requests: ~1% noise at capacity 1000.
        self._sample_size = _SAMPLE_FACTOR * (width // _WIDTH_FACTOR)
        self._rng = random.Random(0x7F4A7C15)  # seeded: a run replays identically
        self._additions = self._hits = self._misses = 0
        self._prev_rate = self._step = 0.0
        self._window_max = self._protected_max = 0
        self._reset_sizes()

    def _reset_sizes(self) -> None:
        main = int(self.max_size * _PERCENT_MAIN)
        self._window_max = self.max_size - main  # >= 1 whenever max_size >= 1
        self._protected_max = int(main * _PERCENT_PROTECTED)
        self._step = -_STEP_PERCENT * self.max_size  # like Caffeine, first try a smaller window

    # -- frequency sketch ------------------------------------------------------------

    def _indexes(self, key: str) -> tuple[int, int, int, int]:
        h = hash(key)
        m, w = self._mask, self._width
        if self._wide:
            g = hash((h, 0x9E3779B9))  # a second, independently mixed 64-bit hash
            return h & m, w + ((h >> 32) & m), 2 * w + (g & m), 3 * w + ((g >> 32) & m)
        return h & m, w + ((h >> 16) & m), 2 * w + ((h >> 32) & m), 3 * w + ((h >> 48) & m)

    def record(self, key: str) -> None:
        """Count one request for ``key`` (hit or miss); inlined, as it runs on every lookup.

        Conservative update: only the counters at the current minimum grow, so keys that
        share a counter with a hot key are overestimated less (a measurably better filter).
        """
        h = hash(key)
        m, w = self._mask, self._width
        if self._wide:
            g = hash((h, 0x9E3779B9))
            i0, i1, i2, i3 = h & m, w + ((h >> 32) & m), 2 * w + (g & m), 3 * w + ((g >> 32) & m)
        else:
            i0, i1 = h & m, w + ((h >> 16) & m)
            i2, i3 = 2 * w + ((h >> 32) & m), 3 * w + ((h >> 48) & m)
        t = self._table
        a, b, c, d = t[i0], t[i1], t[i2], t[i3]
        low = a if a < b else b
        if c < low:
            low = c
        if d < low:
            low = d
        if low >= _MAX_COUNT:
            return
        if a == low:
            t[i0] = low + 1
        if b == low:
            t[i1] = low + 1
        if c == low:
            t[i2] = low + 1
        if d == low:
            t[i3] = low + 1
        self._additions += 1
        if self._additions >= self._sample_size:
            self._age()

    def _age(self) -> None:
        """Halve every counter, so old popularity fades and new keys can win admission."""
        odd = self._table.translate(_ODD).count(1)  # what the halving truncates
        self._table = self._table.translate(_HALVE)
        self._additions = max(0, (self._additions - odd // 4) // 2)

    def frequency(self, key: str) -> int:
        """The sketch's estimate of how often ``key`` was requested lately (0..15)."""
        t = self._table
        i0, i1, i2, i3 = self._indexes(key)
        return min(t[i0], t[i1], t[i2], t[i3])

    def _admit(self, candidate: str, victim: str) -> bool:
        """TinyLFU: the window's candidate replaces main's victim only if it is hotter.

        A warm candidate (>= 6) also wins 1 time in 128 at random, so keys crafted to
        collide with a victim's counters cannot keep it resident forever (Caffeine's guard).
        """
        cand = self.frequency(candidate)
        vict = self.frequency(victim)
        if cand > vict:
            return True
        return cand >= _HASHDOS_THRESHOLD and self._rng.getrandbits(7) == 0

    # -- tier interface --------------------------------------------------------------

    def on_hit(self, key: str) -> None:
        """A resident key was read: refresh it, promoting a probation hit to protected."""
        self._hits += 1
        protected = self._protected
        if key in protected:
            protected.move_to_end(key)
            return
        window = self._window
        if key in window:
            window.move_to_end(key)
            return
        probation = self._probation
        if key in probation:
            del probation[key]
            protected[key] = None
            if len(protected) > self._protected_max:  # demote protected's LRU key
                probation[protected.popitem(last=False)[0]] = None

    def insert(self, key: str) -> list[str]:
        """Take a new key into the window; returns the keys evicted to stay in bounds."""
        self._misses += 1
        if self._hits + self._misses >= self._sample_size:
            self._climb()
        window, probation, protected = self._window, self._probation, self._protected
        window[key] = None
        size = len(window) + len(probation) + len(protected)
        max_size, window_max = self.max_size, self._window_max
        if size <= max_size and len(window) <= window_max:
            return []
        victims: list[str] = []
        while len(window) > window_max:
            candidate = window.popitem(last=False)[0]
            if size <= max_size:  # main has room: no contest
                probation[candidate] = None
                continue
            main = probation or protected
            if main:
                victim = next(iter(main))
                if self._admit(candidate, victim):
                    del main[victim]
                    probation[candidate] = None
                    candidate = victim
            victims.append(candidate)
            size -= 1
        # Now size <= max_size: main only takes a candidate while there is room, so it never
        # outgrows max_size - window_max, and the window is back within window_max.
        return victims

    def remove(self, key: str) -> None:
        """Forget ``key`` (deleted, expired or evicted); a no-op for unknown keys."""
        if self._probation.pop(key, 1) is not None and self._window.pop(key, 1) is not None:
            self._protected.pop(key, None)

    def victim(self) -> str:
        """The key to evict under byte pressure: probation's LRU end, then protected's."""
        for segment in (self._probation, self._protected, self._window):
            if segment:
                return next(iter(segment))
        raise LookupError("victim() on an empty policy")

    def clear(self) -> None:
        """Forget every key and all frequency history."""
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._table = bytearray(len(self._table))
        self._additions = self._hits = self._misses = 0
        self._prev_rate = 0.0
        self._reset_sizes()

    # -- adaptive window (Caffeine's hill climber) -------------------------------------

    def _climb(self) -> None:
        """Once per sample, step the window size the way that last raised the hit rate.

        A fixed 1% window loses badly to LRU when recency predicts reuse; the climber grows
        the window there and shrinks it for stable skewed traffic. The step decays so the
        size settles, and restarts when the hit rate jumps by 5 points (a new workload).
        Unlike Caffeine, a step that would *grow* the window needs a change above one sigma
        of sampling noise: on stable traffic the noise alone made the window random-walk
        upwards and cost up to a point of hit ratio at small capacities.
        """
        hits, requests = self._hits, self._hits + self._misses
        self._hits = self._misses = 0
        if len(self._window) + len(self._probation) + len(self._protected) < self.max_size:
            return  # still filling: nothing is evicted, so the window size does not matter
        rate = hits / requests
        change = rate - self._prev_rate
        self._prev_rate = rate
        amount = self._step if change >= 0 else -self._step
        if amount > 0 and abs(change) < _GROW_Z * math.sqrt(2 * rate * (1 - rate) / requests):
            return
        if abs(change) >= _RESTART_THRESHOLD:
            self._step = math.copysign(_STEP_PERCENT * self.max_size, amount)
        else:
            self._step = _STEP_DECAY * amount
        quota = int(amount)
        window, probation, protected = self._window, self._probation, self._protected
        if quota > 0:  # grow the window out of protected's share, pulling main's LRU keys
            quota = min(quota, self._protected_max)
            self._protected_max -= quota
            self._window_max += quota
            while len(protected) > self._protected_max:
                probation[protected.popitem(last=False)[0]] = None
            for _ in range(quota):
                main = probation or protected
                if not main:
                    break
                window[main.popitem(last=False)[0]] = None
        elif quota < 0:  # shrink it (to 1 at least), handing its LRU keys to probation
            quota = max(0, min(-quota, self._window_max - 1))
            self._window_max -= quota
            self._protected_max += quota
            for _ in range(quota):
                if not window:
                    break
                probation[window.popitem(last=False)[0]] = None
