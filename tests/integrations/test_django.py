"""Django signals invalidate mapped keys and tags after commit (sqlite in memory).

The tests are synchronous, as Django is: each commit hands its invalidation to the
invalidator's private event loop and waits for it, so the cache can be checked as
soon as the ``atomic`` block exits. Every test fills the same small universe of
entries and asserts exactly which of them are gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.db import connection, transaction

from stratacache import InfrastructureError, InMemoryCache
from stratacache.integrations.django import CacheInvalidator


def _configure() -> None:
    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=["integrations.django_app"],
            USE_TZ=True,
        )
        django.setup()


_configure()

from integrations.django_app.models import (  # noqa: E402  (needs the settings above)
    Category,
    FeaturedProduct,
    Product,
    Tag,
)


class Boom(Exception):
    pass


class BrokenCache(InMemoryCache):
    """A cache whose invalidations fail."""

    async def delete_many(self, keys: Any) -> int:
        raise InfrastructureError("redis is down")

    async def invalidate_tags(self, *tags: str) -> int:
        raise InfrastructureError("redis is down")


@pytest.fixture(scope="module", autouse=True)
def tables() -> Iterator[None]:
    with connection.schema_editor() as editor:
        for model in (Category, Tag, Product):
            editor.create_model(model)
    yield
    with connection.schema_editor() as editor:
        for model in (Product, Tag, Category):
            editor.delete_model(model)


class Catalog:
    """Rows created before the invalidator connects, and the entries cached about them."""

    def __init__(self) -> None:
        Product.objects.all().delete()
        Category.objects.all().delete()
        Tag.objects.all().delete()
        self.c1 = Category.objects.create(name="c1")
        self.c2 = Category.objects.create(name="c2")
        self.t1 = Tag.objects.create(name="t1")
        self.t2 = Tag.objects.create(name="t2")
        self.p = Product.objects.create(name="p", category=self.c1)
        self.keys = [f"product:{self.p.pk}", f"tag:{self.t1.pk}", f"tag:{self.t2.pk}"]
        self.tags = ["products", "tags", f"category:{self.c1.pk}", f"category:{self.c2.pk}"]

    def fill(self, cache: InMemoryCache) -> None:
        async def go() -> None:
            for key in self.keys:
                await cache.set(key, "v")
            for tag in self.tags:
                await cache.set(f"tagged:{tag}", "v", tags=[tag])

        asyncio.run(go())

    def gone(self, cache: InMemoryCache) -> set[str]:
        """The entries of the universe no longer cached (tags as ``tagged:<tag>``)."""
        names = [*self.keys, *(f"tagged:{tag}" for tag in self.tags)]

        async def go() -> set[str]:
            return {name for name in names if not await cache.exists(name)}

        return asyncio.run(go())

    def product_entries(self, product: Any = None, category: Any = None) -> set[str]:
        product = product or self.p
        category = category or self.c1
        return {f"product:{product.pk}", "tagged:products", f"tagged:category:{category.pk}"}

    def tag_entries(self, *tags: Any) -> set[str]:
        return {f"tag:{tag.pk}" for tag in tags} | {"tagged:tags"}


def register(invalidator: CacheInvalidator) -> None:
    invalidator.register(
        Product,
        keys=lambda p: [f"product:{p.pk}"],
        tags=lambda p: ["products", f"category:{p.category_id}"],
    )
    invalidator.register(Tag, keys=lambda t: f"tag:{t.pk}", tags=["tags"])


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture
def cache(catalog: Catalog) -> InMemoryCache:
    cache = InMemoryCache()
    catalog.fill(cache)
    return cache


@pytest.fixture
def invalidator(cache: InMemoryCache) -> Iterator[CacheInvalidator]:
    invalidator = CacheInvalidator(cache)
    register(invalidator)
    invalidator.connect()
    yield invalidator
    invalidator.close()


# -- saves and deletes ---------------------------------------------------------------


@pytest.mark.usefixtures("invalidator")
def test_create_invalidates_after_the_atomic_block_commits(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    with transaction.atomic():
        product = Product.objects.create(name="new", category=catalog.c2)
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == {"tagged:products", f"tagged:category:{catalog.c2.pk}"}
    assert product.pk is not None


@pytest.mark.usefixtures("invalidator")
def test_update_moving_category_invalidates_the_old_and_the_new_tag(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    product = Product.objects.get(pk=catalog.p.pk)
    with transaction.atomic():
        product.category = catalog.c2
        product.save()
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == catalog.product_entries() | {f"tagged:category:{catalog.c2.pk}"}


def test_without_previous_values_only_the_new_category_is_invalidated(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    invalidator = CacheInvalidator(cache, previous_values=False)
    register(invalidator)
    invalidator.connect()
    try:
        product = Product.objects.get(pk=catalog.p.pk)
        product.category = catalog.c2
        product.save()
    finally:
        invalidator.close()
    expected = {f"product:{product.pk}", "tagged:products", f"tagged:category:{catalog.c2.pk}"}
    assert catalog.gone(cache) == expected


@pytest.mark.usefixtures("invalidator")
def test_fields_left_unsaved_by_update_fields_render_with_their_stored_values(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    product = Product.objects.get(pk=catalog.p.pk)
    product.category = catalog.c2  # changed in memory, but not saved below
    product.name = "renamed"
    product.save(update_fields=["name"])
    # The row stays in c1 (whose listing shows the new name); c2 is not touched.
    assert Product.objects.get(pk=catalog.p.pk).category_id == catalog.c1.pk
    assert catalog.gone(cache) == catalog.product_entries()


def test_a_key_function_reading_the_relation_gets_the_old_related_object(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    invalidator = CacheInvalidator(cache)
    invalidator.register(Product, tags=lambda p: f"category:{p.category.pk}")
    invalidator.connect()
    try:
        product = Product.objects.get(pk=catalog.p.pk)
        product.category = catalog.c2
        product.save()
    finally:
        invalidator.close()
    both = {f"tagged:category:{catalog.c1.pk}", f"tagged:category:{catalog.c2.pk}"}
    assert catalog.gone(cache) == both


@pytest.mark.usefixtures("invalidator")
def test_unchanged_save_reads_no_old_values(cache: InMemoryCache, catalog: Catalog) -> None:
    product = Product.objects.get(pk=catalog.p.pk)
    product.save()
    assert catalog.gone(cache) == catalog.product_entries()


@pytest.mark.usefixtures("invalidator")
def test_delete_invalidates_after_commit(cache: InMemoryCache, catalog: Catalog) -> None:
    expected = catalog.product_entries()
    with transaction.atomic():
        Product.objects.get(pk=catalog.p.pk).delete()
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == expected


@pytest.mark.usefixtures("invalidator")
def test_queryset_delete_sends_post_delete_per_row(cache: InMemoryCache, catalog: Catalog) -> None:
    Product.objects.filter(pk=catalog.p.pk).delete()
    assert catalog.gone(cache) == catalog.product_entries()


@pytest.mark.usefixtures("invalidator")
def test_rollback_invalidates_nothing(cache: InMemoryCache, catalog: Catalog) -> None:
    def change_then_fail() -> None:
        with transaction.atomic():
            Product.objects.create(name="new", category=catalog.c2)
            Product.objects.get(pk=catalog.p.pk).delete()
            raise Boom

    with pytest.raises(Boom):
        change_then_fail()
    assert catalog.gone(cache) == set()
    assert Product.objects.filter(pk=catalog.p.pk).exists()


@pytest.mark.usefixtures("invalidator")
def test_a_rolled_back_savepoint_takes_its_invalidations_with_it(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    def delete_then_fail() -> None:
        with transaction.atomic():
            Product.objects.get(pk=catalog.p.pk).delete()
            raise Boom

    with transaction.atomic():
        catalog.t1.save()
        with pytest.raises(Boom):
            delete_then_fail()
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == catalog.tag_entries(catalog.t1)
    assert Product.objects.filter(pk=catalog.p.pk).exists()


@pytest.mark.usefixtures("invalidator")
def test_autocommit_invalidates_when_the_row_is_written(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    catalog.t2.name = "renamed"
    catalog.t2.save()
    assert catalog.gone(cache) == catalog.tag_entries(catalog.t2)


@pytest.mark.usefixtures("invalidator")
def test_a_proxy_model_uses_its_concrete_models_rules(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    FeaturedProduct.objects.get(pk=catalog.p.pk).save()
    assert catalog.gone(cache) == catalog.product_entries()


# -- many-to-many --------------------------------------------------------------------


@pytest.mark.usefixtures("invalidator")
def test_m2m_add_invalidates_both_sides_after_commit(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    with transaction.atomic():
        catalog.p.tags.add(catalog.t1)
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == catalog.product_entries() | catalog.tag_entries(catalog.t1)


@pytest.mark.usefixtures("invalidator")
def test_m2m_add_from_the_reverse_side(cache: InMemoryCache, catalog: Catalog) -> None:
    catalog.t2.products.add(catalog.p)
    assert catalog.gone(cache) == catalog.product_entries() | catalog.tag_entries(catalog.t2)


@pytest.mark.usefixtures("invalidator")
def test_m2m_remove(cache: InMemoryCache, catalog: Catalog) -> None:
    Product.tags.through.objects.create(product=catalog.p, tag=catalog.t1)  # no signal
    with transaction.atomic():
        catalog.p.tags.remove(catalog.t1)
        assert catalog.gone(cache) == set()
    assert catalog.gone(cache) == catalog.product_entries() | catalog.tag_entries(catalog.t1)


@pytest.mark.usefixtures("invalidator")
def test_m2m_clear_invalidates_the_objects_that_were_related(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    Product.tags.through.objects.create(product=catalog.p, tag=catalog.t1)
    Product.tags.through.objects.create(product=catalog.p, tag=catalog.t2)
    with transaction.atomic():
        catalog.p.tags.clear()
        assert catalog.gone(cache) == set()
    expected = catalog.product_entries() | catalog.tag_entries(catalog.t1, catalog.t2)
    assert catalog.gone(cache) == expected


@pytest.mark.usefixtures("invalidator")
def test_m2m_clear_from_the_reverse_side(cache: InMemoryCache, catalog: Catalog) -> None:
    Product.tags.through.objects.create(product=catalog.p, tag=catalog.t1)
    catalog.t1.products.clear()
    assert catalog.gone(cache) == catalog.product_entries() | catalog.tag_entries(catalog.t1)


def test_m2m_with_fixed_rules_on_the_related_side_loads_no_rows(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    invalidator = CacheInvalidator(cache)
    invalidator.register(Tag, tags=["tags"])
    invalidator.connect()
    try:
        catalog.p.tags.add(catalog.t1)
    finally:
        invalidator.close()
    assert catalog.gone(cache) == {"tagged:tags"}


@pytest.mark.usefixtures("invalidator")
def test_m2m_rollback_invalidates_nothing(cache: InMemoryCache, catalog: Catalog) -> None:
    def add_then_fail() -> None:
        with transaction.atomic():
            catalog.p.tags.add(catalog.t1, catalog.t2)
            raise Boom

    with pytest.raises(Boom):
        add_then_fail()
    assert catalog.gone(cache) == set()
    assert not catalog.p.tags.exists()


# -- connecting ----------------------------------------------------------------------


def test_connecting_twice_connects_once(cache: InMemoryCache, catalog: Catalog) -> None:
    invalidator = CacheInvalidator(cache)
    register(invalidator)
    invalidator.connect()
    invalidator.connect()
    try:
        catalog.t1.save()
    finally:
        invalidator.close()
    assert invalidator.get_stats()["batches"] == 1


def test_disconnect_stops_invalidation(cache: InMemoryCache, catalog: Catalog) -> None:
    invalidator = CacheInvalidator(cache)
    register(invalidator)
    invalidator.connect()
    invalidator.disconnect()
    catalog.t1.save()
    invalidator.close()
    assert catalog.gone(cache) == set()
    assert invalidator.get_stats()["batches"] == 0


def test_a_model_registered_after_connect_is_connected(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    invalidator = CacheInvalidator(cache)
    invalidator.connect()
    try:
        catalog.t1.save()
        assert catalog.gone(cache) == set()
        invalidator.register(Tag, keys=lambda t: f"tag:{t.pk}")
        catalog.t1.save()
    finally:
        invalidator.close()
    assert catalog.gone(cache) == {f"tag:{catalog.t1.pk}"}


def test_close_stops_the_private_loop_thread(cache: InMemoryCache, catalog: Catalog) -> None:
    invalidator = CacheInvalidator(cache)
    register(invalidator)
    invalidator.connect()
    catalog.t1.save()
    name = f"stratacache-django-{invalidator._id}"
    assert name in {thread.name for thread in threading.enumerate()}
    invalidator.close()
    assert name not in {thread.name for thread in threading.enumerate()}
    catalog.t2.save()  # disconnected: nothing happens
    assert catalog.gone(cache) == catalog.tag_entries(catalog.t1)


# -- failures never reach the commit -------------------------------------------------


def test_a_failing_cache_does_not_break_the_commit(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    invalidator = CacheInvalidator(BrokenCache())
    register(invalidator)
    invalidator.connect()
    try:
        with transaction.atomic():
            product = Product.objects.create(name="saved anyway", category=catalog.c1)
    finally:
        invalidator.close()
    assert Product.objects.filter(pk=product.pk).exists()
    stats = invalidator.get_stats()
    assert stats["errors"] == 2
    assert "redis is down" in stats["last_error"]
    assert "failed after commit" in caplog.text


def test_a_failing_key_function_does_not_break_the_save(
    cache: InMemoryCache, catalog: Catalog
) -> None:
    invalidator = CacheInvalidator(cache)
    invalidator.register(Tag, keys=lambda t: [t.missing_attribute])
    invalidator.connect()
    try:
        catalog.t1.name = "renamed"
        catalog.t1.save()
    finally:
        invalidator.close()
    assert Tag.objects.get(pk=catalog.t1.pk).name == "renamed"
    assert invalidator.get_stats()["errors"] >= 1
    assert catalog.gone(cache) == set()
