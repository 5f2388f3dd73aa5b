"""The catalog service: a small FastAPI app whose reads go through stratacache.

===================================  ==========================================================
``GET /``                            this service explained (HTML)
``GET /products/{id}``               one product: key ``product:{id}``, tag ``product:{id}``
``GET /products?category=&limit=``   a page of products: tag ``category:{c}`` (or ``products``)
``GET /categories``                  product counts per category: tag ``products``
``POST /products``                   create; drops ``product:{id}``, ``category:{c}``, ``products``
``PATCH /products/{id}``             update (a category move drops the old and the new category)
``DELETE /products/{id}``            delete
``/internal/cache/...``              stratacache's management API (status, keys, dashboard ...)
===================================  ==========================================================

Every read answers with ``X-Cache: HIT|MISS``, ``X-Cache-Tier: memory|redis|source``
and ``Server-Timing`` (see :mod:`.caching`). Writes commit first; the entries they
affect are dropped *after* the commit by stratacache's SQLAlchemy hook
(:class:`~stratacache.integrations.sqlalchemy.CacheInvalidator`), and the response
waits for that, so a client reads its own write on the next request.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratacache import CacheInterface
from stratacache.config import load_settings
from stratacache.integrations.sqlalchemy import CacheInvalidator
from stratacache.web import management_router

from .caching import ReadThrough, build_cache, describe_cache
from .db import Product, make_engine, make_sessions, utcnow
from .seed import CATEGORIES, ensure_seeded

__all__ = ["create_app"]

logger = logging.getLogger("catalog")

MAX_LIMIT = 100
_LANDING = Path(__file__).with_name("landing.html")

ProductId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class ProductIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    category: str
    price_cents: int = Field(ge=0, le=10_000_000)
    stock: int = Field(ge=0, le=1_000_000)
    description: str = Field("", max_length=500)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        return _check_category(value)


class ProductPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=120)
    category: str | None = None
    price_cents: int | None = Field(None, ge=0, le=10_000_000)
    stock: int | None = Field(None, ge=0, le=1_000_000)
    description: str | None = Field(None, max_length=500)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        return None if value is None else _check_category(value)


def _check_category(value: str) -> str:
    if value not in CATEGORIES:
        raise ValueError("unknown category; GET /categories lists them")
    return value


def product_tags(product: Product) -> list[str]:
    """What a change to ``product`` makes stale."""
    return [f"product:{product.id}", f"category:{product.category}", "products"]


class _TotalTime:
    """Append ``app;dur=<ms>`` (time to the response headers) to ``Server-Timing``.

    Plain ASGI rather than ``@app.middleware("http")``, which costs far more per
    request than the cache hits it would be timing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                total = f"app;dur={(time.perf_counter() - started) * 1000:.3f}".encode()
                headers = list(message.get("headers", ()))
                for index, (name, value) in enumerate(headers):
                    if name.lower() == b"server-timing":
                        headers[index] = (name, value + b", " + total)
                        break
                else:
                    headers.append((b"server-timing", total))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)


def create_app(
    *,
    database: Path | None = None,
    cache: CacheInterface | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """The catalog app.

    Args:
        database: the SQLite file (seeded here if it is not yet); default
            ``CATALOG_DB`` or a file in the temporary directory.
        cache: the cache to use; default :func:`~.caching.build_cache` from the
            environment. The app connects it on startup and closes it on shutdown.
        api_key: the management API's key; default ``API_KEY`` (and
            ``ADDITIONAL_API_KEYS``), else a random one, logged at startup.
    """
    seeded = ensure_seeded(database)
    settings = load_settings()
    cache = build_cache() if cache is None else cache
    keys = [api_key] if api_key else settings.all_api_keys()
    generated = not keys
    if generated:
        keys = [secrets.token_urlsafe(24)]
    engine = make_engine(seeded.path)
    sessions = make_sessions(engine)
    invalidator = CacheInvalidator(cache)
    invalidator.register(Product, tags=product_tags)
    invalidator.attach(sessions)
    reads = ReadThrough(cache)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not await cache.connect():
            logger.warning(
                "catalog: Redis is not reachable yet; serving from the memory tier "
                "until it is (the cache reconnects by itself)"
            )
        logger.info("catalog: %s products in %s", seeded.products, seeded.path)
        logger.info("catalog: cache: %s", describe_cache(cache))
        if generated:
            logger.warning(
                "catalog: management API key (generated; set API_KEY to choose one): %s",
                keys[0],
            )
        try:
            yield
        finally:
            invalidator.close()
            await cache.aclose()
            await engine.dispose()

    app = FastAPI(title="stratacache catalog demo", lifespan=lifespan)
    app.state.cache = cache
    app.state.api_keys = keys
    app.state.invalidator = invalidator
    app.state.database = seeded.path
    app.include_router(management_router(cache, api_keys=keys, preset=settings.cache_preset))
    app.add_middleware(_TotalTime)

    # -- reads ---------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def landing(request: Request) -> HTMLResponse:
        values = {
            "cache": describe_cache(cache),
            "products": f"{seeded.products:,}",
            # From the Host header, which the client chooses: escaped like the rest.
            "origin": f"{request.url.scheme}://{request.headers.get('host', 'localhost')}",
        }
        page = _LANDING.read_text(encoding="utf-8")
        for name, value in values.items():
            page = page.replace("{{" + name + "}}", html.escape(value))
        return HTMLResponse(page)

    @app.get("/products/{product_id}")
    async def get_product(product_id: ProductId) -> JSONResponse:
        async def load() -> dict[str, Any] | None:
            async with sessions() as session:
                product = await session.get(Product, product_id)
                return None if product is None else product.to_dict()

        tags = [f"product:{product_id}"]
        value, outcome = await reads.get(f"product:{product_id}", load, tags=tags)
        if value is None:  # a missing product is cached too, until one is created
            detail = {"detail": f"no product {product_id}"}
            return JSONResponse(detail, 404, headers=outcome.headers())
        return JSONResponse(value, headers=outcome.headers())

    @app.get("/products")
    async def list_products(
        category: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    ) -> JSONResponse:
        if category is not None and category not in CATEGORIES:
            raise HTTPException(404, f"no category {category!r}; GET /categories lists them")

        async def load() -> list[dict[str, Any]]:
            query = select(Product).order_by(Product.id).limit(limit)
            if category is not None:
                query = query.where(Product.category == category)
            async with sessions() as session:
                return [product.to_dict() for product in await session.scalars(query)]

        key = f"products:category={category or '*'}:limit={limit}"
        tags = [f"category:{category}"] if category else ["products"]
        items, outcome = await reads.get(key, load, tags=tags)
        body = {"category": category, "count": len(items), "products": items}
        return JSONResponse(body, headers=outcome.headers())

    @app.get("/categories")
    async def categories() -> JSONResponse:
        async def load() -> dict[str, int]:
            query = select(Product.category, func.count()).group_by(Product.category)
            async with sessions() as session:
                rows = (await session.execute(query)).all()
                return {str(name): int(count) for name, count in rows}

        counts, outcome = await reads.get("categories", load, tags=["products"])
        return JSONResponse({"categories": counts}, headers=outcome.headers())

    # -- writes: commit, then the hook drops the stale entries -----------------------

    async def committed(started: float, dropped: list[str]) -> dict[str, str]:
        db_ms = (time.perf_counter() - started) * 1000
        began = time.perf_counter()
        await invalidator.drain()  # the after-commit invalidation, finished
        invalidate_ms = (time.perf_counter() - began) * 1000
        return {
            "X-Cache-Invalidated": ", ".join(dict.fromkeys(dropped)),
            "Server-Timing": f"db;dur={db_ms:.3f}, invalidate;dur={invalidate_ms:.3f}",
        }

    @app.post("/products", status_code=201)
    async def create_product(body: ProductIn) -> JSONResponse:
        started = time.perf_counter()
        async with sessions() as session:
            product = Product(**body.model_dump(), updated_at=utcnow())
            session.add(product)
            await session.commit()
        headers = await committed(started, product_tags(product))
        headers["Location"] = f"/products/{product.id}"
        return JSONResponse(product.to_dict(), 201, headers=headers)

    @app.patch("/products/{product_id}")
    async def update_product(product_id: ProductId, body: ProductPatch) -> JSONResponse:
        started = time.perf_counter()
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        async with sessions() as session:
            product = await session.get(Product, product_id)
            if product is None:
                raise HTTPException(404, f"no product {product_id}")
            dropped = product_tags(product)
            for name, value in changes.items():
                setattr(product, name, value)
            product.updated_at = utcnow()
            await session.commit()
        headers = await committed(started, dropped + product_tags(product))
        return JSONResponse(product.to_dict(), headers=headers)

    @app.delete("/products/{product_id}", status_code=204)
    async def delete_product(product_id: ProductId) -> Response:
        started = time.perf_counter()
        async with sessions() as session:
            product = await session.get(Product, product_id)
            if product is None:
                raise HTTPException(404, f"no product {product_id}")
            await session.delete(product)
            await session.commit()
        headers = await committed(started, product_tags(product))
        return Response(status_code=204, headers=headers)

    return app
