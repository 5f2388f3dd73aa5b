"""Locust traffic for the catalog demo (``examples/catalog``), as ``benchmarks.load`` runs it.

The mix, per task: 85% ``GET /products/{id}`` with a Zipf-like skew (exponent
``ZIPF_S`` over 10,000 products, popular ones spread over the id range), 13%
``GET /products?category=&limit=`` (Zipf over the 50 categories), 1.5% ``PATCH`` of
a product drawn from the same skew (so writes hit hot entries, as they do in real
life), 0.5% ``POST`` followed by a ``DELETE`` of the product just created: about
2.5% of requests write, each dropping hot entries (the product, its category's
lists).

Every user draws from its own seeded generator, so two runs send the same kind of
traffic. Run by hand::

    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000

``LOCUST_TIMINGS`` (a file path): at the end, write there as JSON every request's
response time in milliseconds (floats, per request name; locust's CSV rounds
percentiles to whole milliseconds, too coarse for cache hits) and how many GET
answers said ``X-Cache: HIT`` or ``MISS``.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
from collections import defaultdict
from typing import Any

from locust import FastHttpUser, between, events, task

PRODUCTS = 10_000
# The seed's categories (examples/catalog/seed.py), repeated here so that locust's
# process need not import the app; a mismatch would show as failed list requests.
CATEGORIES = (
    "audio", "baby", "bags", "bath", "beauty", "bikes", "books", "cameras", "camping",
    "candles", "cleaning", "clocks", "coffee", "comics", "computers", "cookware", "crafts",
    "cycling", "decor", "drones", "fitness", "flooring", "furniture", "games", "garden",
    "gifts", "grocery", "hats", "health", "jewelry", "kitchen", "lighting", "luggage",
    "movies", "music", "office", "outdoor", "paint", "party", "pets", "phones", "plants",
    "running", "shoes", "sports", "storage", "tea", "tools", "toys", "watches",
)  # fmt: skip
ZIPF_S = 1.1
LIMITS = (10, 20, 50)


class Zipf:
    """Draw items so that the k-th most popular has weight ``1 / k**s``."""

    def __init__(self, items: list[Any], s: float, seed: int) -> None:
        random.Random(seed).shuffle(items)  # popularity is not ordered by id
        self.items = items
        self.cumulative = list(
            itertools.accumulate(1 / rank**s for rank in range(1, len(items) + 1))
        )

    def draw(self, rng: random.Random) -> Any:
        point = rng.random() * self.cumulative[-1]
        return self.items[min(bisect.bisect_left(self.cumulative, point), len(self.items) - 1)]


PRODUCT_IDS = Zipf(list(range(1, PRODUCTS + 1)), ZIPF_S, seed=7)
CATEGORY_NAMES = Zipf(list(CATEGORIES), ZIPF_S, seed=11)
_user_numbers = itertools.count(1)
_timings: dict[str, list[float]] = defaultdict(list)
_x_cache: dict[str, int] = defaultdict(int)  # X-Cache of GET answers: HIT / MISS


def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: Any,
    response: Any = None,
    **_: Any,
) -> None:
    if exception is not None:
        return
    _timings[f"{request_type} {name}"].append(response_time)
    headers = getattr(response, "headers", None)
    verdict = headers.get("X-Cache") or headers.get("x-cache") if headers is not None else None
    if request_type == "GET" and verdict:
        _x_cache[str(verdict)] += 1


def _write_timings(**_: Any) -> None:
    path = os.environ.get("LOCUST_TIMINGS")
    if path:
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"timings": _timings, "x_cache": _x_cache}, file)


events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write_timings)  # type: ignore[no-untyped-call]


class CatalogUser(FastHttpUser):
    wait_time = between(0.005, 0.015)

    def on_start(self) -> None:
        self.rng = random.Random(next(_user_numbers))

    @task(170)
    def product(self) -> None:
        product_id = PRODUCT_IDS.draw(self.rng)
        with self.client.get(
            f"/products/{product_id}", name="/products/{id}", catch_response=True
        ) as response:
            if response.status_code in (200, 404):  # 404: deleted by another user
                response.success()

    @task(26)
    def listing(self) -> None:
        category = CATEGORY_NAMES.draw(self.rng)
        limit = self.rng.choice(LIMITS)
        self.client.get(f"/products?category={category}&limit={limit}", name="/products?category=")

    @task(3)
    def update(self) -> None:
        product_id = PRODUCT_IDS.draw(self.rng)
        with self.client.patch(
            f"/products/{product_id}",
            json={"stock": self.rng.randrange(0, 500)},
            name="/products/{id}",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 404):
                response.success()

    @task(1)
    def create_and_delete(self) -> None:
        created = self.client.post(
            "/products",
            json={
                "name": f"Load test item {self.rng.randrange(10**9)}",
                "category": CATEGORY_NAMES.draw(self.rng),
                "price_cents": self.rng.randrange(100, 10_000),
                "stock": 1,
            },
            name="/products",
        )
        location = created.headers.get("Location") if created.headers else None
        if created.status_code == 201 and isinstance(location, str):
            self.client.delete(location, name="/products/{id}")
