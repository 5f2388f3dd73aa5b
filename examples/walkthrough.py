"""A two-minute tour of stratacache's memory cache (what `make run` shows).

Run it with ``make run`` or ``python examples/walkthrough.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from stratacache import Codec, InMemoryCache, SerializationError
from stratacache.testing import FakeClock


@dataclasses.dataclass
class Product:
    id: int
    name: str
    price_cents: int
    added: dt.date


def show(label: str, value: object) -> None:
    print(f"  {label:<44} {value!r}")


async def main() -> None:
    clock = FakeClock()  # a fake clock lets the tour skip ahead in time
    cache = InMemoryCache(max_size=3, default_ttl=60, clock=clock, codec=Codec(types=[Product]))
    async with cache:
        print("1. Values come back equal and with the same type")
        await cache.set("product:1", Product(1, "kettle", 2999, dt.date(2024, 1, 5)))
        await cache.set("point", (3, 4))
        show("get('product:1')", await cache.get("product:1"))
        show("get('point')", await cache.get("point"))

        print("2. TTL: default 60 s, ttl=0 never expires")
        await cache.set("forever", "still here", ttl=0)
        clock.advance(61)
        show("after 61 s, get('point')", await cache.get("point"))
        show("after 61 s, get('forever')", await cache.get("forever"))

        print("3. LRU: max_size=3, the least recently read goes first")
        for key in ("a", "b", "c"):
            await cache.set(key, key.upper())
        await cache.get("a")
        await cache.set("d", "D")
        show("get_many(['a', 'b', 'c', 'd'])", await cache.get_many(["a", "b", "c", "d"]))

        print("4. Tags and patterns")
        await cache.clear()
        await cache.set("user:1", "ann", tags=["team:red"])
        await cache.set("user:2", "bob", tags=["team:red"])
        await cache.set("order:9", "open")
        show("invalidate_tags('team:red')", await cache.invalidate_tags("team:red"))
        show("invalidate_pattern('order:*')", await cache.invalidate_pattern("order:*"))

        print("5. get_or_set: 100 concurrent callers, one load")
        loads = 0

        async def load_report() -> dict[str, int]:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.01)  # a slow database
            return {"orders": 42}

        results = await asyncio.gather(
            *(cache.get_or_set("report", load_report) for _ in range(100))
        )
        show("distinct results / loader calls", (len({str(r) for r in results}), loads))

        print("6. Unsupported values fail loudly, on set")
        try:
            await cache.set("socket", object())
        except SerializationError as exc:
            show("SerializationError", exc.message[:60] + "...")

        print("7. Stats")
        stats = cache.get_stats()
        for name in ("hits", "misses", "sets", "evictions", "expirations", "hit_rate"):
            show(name, round(stats[name], 3) if name == "hit_rate" else stats[name])


if __name__ == "__main__":
    asyncio.run(main())
