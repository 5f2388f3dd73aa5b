"""The retention window: a ring of per-interval slots, reused as time moves on.

The window of ``retention_hours`` is cut into ``intervals`` slots of equal length.
Records go to the slot of the current interval; a slot whose interval has left the
window is replaced, never grown, so the ring holds at most ``intervals`` slots
whatever the load, and figures cover between ``intervals - 1`` and ``intervals``
intervals. Not thread-safe on its own: the monitor holds its lock around every use.
"""

from __future__ import annotations

import math

from ._histogram import Histogram
from ._report import Compression, Invalidations, KeyGeneration, SeriesKey, Window

__all__ = ["Ring", "Slot"]


class Slot:
    """What happened during one interval: counts, timings, invalidations, memory."""

    __slots__ = (
        "compression",
        "counters",
        "counts",
        "epoch",
        "invalidations",
        "key_generation",
        "latency",
        "memory",
        "slow",
    )

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.counts: dict[SeriesKey, int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}  # (operation, tier)
        self.slow: dict[str, int] = {}
        self.counters: dict[tuple[str, str, str], int] = {}  # (cache, tier, name)
        self.key_generation: KeyGeneration | None = None
        self.compression: Compression | None = None
        self.invalidations: dict[tuple[str, str], Invalidations] = {}  # (type, pattern)
        self.memory: float | None = None  # total cache bytes at the last reading


class Ring:
    """``intervals`` slots of ``interval`` seconds; :attr:`slot` is the current one.

    ``slot`` and ``ends`` are public for one reader, the monitor's sampled path:
    ``ring.slot if now < ring.ends else ring.turn(now)`` spares it a call.
    """

    __slots__ = ("_slots", "ends", "epoch", "interval", "intervals", "slot")

    def __init__(self, interval: float, intervals: int, now: float) -> None:
        self.interval = interval
        self.intervals = intervals
        self._slots: list[Slot | None] = [None] * intervals
        self.epoch = int(now // interval)
        self.slot = self._slot_for(self.epoch)
        self.ends = (self.epoch + 1) * interval

    def _slot_for(self, epoch: int) -> Slot:
        index = epoch % self.intervals
        slot = self._slots[index]
        if slot is None or slot.epoch != epoch:
            slot = self._slots[index] = Slot(epoch)
        return slot

    def turn(self, now: float) -> Slot:
        """The slot for ``now``, moving on to a new interval when one has ended."""
        if now >= self.ends:
            epoch = int(now // self.interval)
            if epoch > self.epoch:  # a clock never goes back; ignore one that does
                self.epoch = epoch
                self.slot = self._slot_for(epoch)
                self.ends = (epoch + 1) * self.interval
        return self.slot

    def live(self) -> list[Slot]:
        """The slots still in the window, oldest first."""
        oldest = self.epoch - self.intervals
        slots = [slot for slot in self._slots if slot is not None and slot.epoch > oldest]
        return sorted(slots, key=lambda slot: slot.epoch)

    def merge_into(self, window: Window) -> None:
        """Add every live slot's figures to ``window``."""
        last_hour = self.epoch - max(1, math.ceil(3600.0 / self.interval))
        for slot in self.live():
            for key, count in slot.counts.items():
                window.counts[key] = window.counts.get(key, 0) + count
            for labels, histogram in slot.latency.items():
                merged = window.latency.get(labels)
                if merged is None:
                    merged = window.latency[labels] = Histogram()
                merged.merge(histogram)
            for operation, count in slot.slow.items():
                window.slow[operation] = window.slow.get(operation, 0) + count
            for (_cache, _tier, name), count in slot.counters.items():
                window.counters[name] = window.counters.get(name, 0) + count
            if slot.key_generation is not None:
                window.key_generation.merge(slot.key_generation)
            if slot.compression is not None:
                window.compression.merge(slot.compression)
            for labels, stats in slot.invalidations.items():
                into = window.invalidations.get(labels)
                if into is None:
                    into = window.invalidations[labels] = Invalidations()
                into.merge(stats)
                if slot.epoch > last_hour:
                    window.last_hour_invalidations += stats.events
            if slot.memory is not None:
                hours = slot.epoch * self.interval / 3600.0
                window.memory_history.append((hours, slot.memory))
