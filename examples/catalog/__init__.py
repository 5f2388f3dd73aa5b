"""The catalog demo: a FastAPI + SQLite product service whose reads go through stratacache.

Run it with ``make run``, ``python -m examples.catalog`` or ``stratacache demo``, then
open http://127.0.0.1:8000/. ``REDIS_URL`` set: memory in front of Redis;
``CACHE_PRESET=disabled``: no caching (what the load test compares against).

* :mod:`.app` — the service (``create_app``) and its endpoints;
* :mod:`.server` — ``serve``: seed, print where everything is, run uvicorn;
* :mod:`.caching` — which cache, and the ``X-Cache`` headers of each read;
* :mod:`.db` / :mod:`.seed` — the SQLite catalog, seeded once with 10,000 products.

This package imports none of them: ``python -m examples.catalog.seed`` (which the
load test runs) must not find its own module imported, and seeding needs no FastAPI.
"""
