"""The registration API and the async bridge both ORM integrations share (no ORM needed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass

import pytest

from stratacache import InMemoryCache, ValidationError
from stratacache.integrations._base import InvalidatorBase
from stratacache.integrations._registry import SAME, Invalidation, Previous, Rule


@dataclass
class Item:
    id: int
    group: int


class SpecialItem(Item):
    pass


@pytest.fixture
def invalidator() -> InvalidatorBase:
    return InvalidatorBase(InMemoryCache())


def test_importing_the_package_imports_no_orm() -> None:
    code = (
        "import sys, stratacache.integrations;"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported';"
        "assert 'django' not in sys.modules, 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_functions_and_fixed_lists_render_together(invalidator: InvalidatorBase) -> None:
    returned = invalidator.register(
        Item, keys=lambda i: [f"item:{i.id}"], tags=lambda i: f"group:{i.group}"
    )
    invalidator.register(Item, keys="items:all", tags=["items"])
    assert returned is Item
    assert invalidator.invalidation_for(Item(1, 7)) == Invalidation(
        frozenset({"item:1", "items:all"}), frozenset({"group:7", "items"})
    )


def test_the_decorator_form_registers_and_returns_the_class(invalidator: InvalidatorBase) -> None:
    @invalidator.register(tags=["widgets"])
    @dataclass
    class Widget:
        id: int

    assert Widget.__name__ == "Widget"
    assert invalidator.invalidation_for(Widget(1)).tags == {"widgets"}


def test_rules_of_a_base_class_apply_to_subclasses(invalidator: InvalidatorBase) -> None:
    invalidator.register(Item, keys=lambda i: f"item:{i.id}")
    invalidator.register(SpecialItem, tags=["special"])
    assert invalidator.invalidation_for(SpecialItem(2, 0)) == Invalidation(
        frozenset({"item:2"}), frozenset({"special"})
    )
    assert invalidator.invalidation_for(Item(2, 0)).tags == frozenset()
    assert invalidator.invalidation_for(object()) == Invalidation()


def test_a_function_may_return_none(invalidator: InvalidatorBase) -> None:
    invalidator.register(Item, keys=lambda i: None if i.id == 0 else f"item:{i.id}")
    assert not invalidator.invalidation_for(Item(0, 0))
    assert invalidator.invalidation_for(Item(3, 0)).keys == {"item:3"}


def test_registration_validates_what_it_can(invalidator: InvalidatorBase) -> None:
    with pytest.raises(ValidationError, match="needs keys, tags or bulk_tags"):
        invalidator.register(Item)
    with pytest.raises(ValidationError, match="must not be empty"):
        invalidator.register(Item, keys=[""])
    with pytest.raises(ValidationError, match="each tag"):
        invalidator.register(Item, tags=["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="needs a model class"):
        invalidator.register(Item(1, 1), keys=["k"])  # type: ignore[call-overload]


def test_invalid_output_of_a_function_raises_when_rendered(invalidator: InvalidatorBase) -> None:
    invalidator.register(Item, keys=lambda i: [i.id])
    with pytest.raises(ValidationError, match="must be str"):
        invalidator.invalidation_for(Item(1, 1))


def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(ValidationError, match="CacheInterface"):
        InvalidatorBase(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="timeout"):
        InvalidatorBase(InMemoryCache(), timeout=0)


def test_bulk_uses_fixed_parts_and_bulk_tags_or_says_it_cannot() -> None:
    fixed = Rule.build(["all"], ["t"], None)
    assert fixed.bulk() == Invalidation(frozenset({"all"}), frozenset({"t"}))
    per_row = Rule.build(lambda o: [f"k:{o}"], lambda o: [f"t:{o}"], None)
    assert per_row.bulk() is None
    with_bulk = Rule.build(lambda o: [f"k:{o}"], (), ["b"])
    assert with_bulk.bulk() == Invalidation(frozenset(), frozenset({"b"}))


def test_previous_reads_old_values_and_passes_for_the_object() -> None:
    item = Item(1, 2)
    view = Previous(item, lambda name: 9 if name == "group" else SAME)
    assert (view.id, view.group) == (1, 9)
    assert isinstance(view, Item)
    with pytest.raises(AttributeError, match="read-only"):
        view.group = 3


def test_the_sync_path_finishes_before_submit_returns() -> None:
    cache = InMemoryCache()
    invalidator = InvalidatorBase(cache)
    invalidator.register(Item, keys=lambda i: f"item:{i.id}")

    async def fill() -> None:
        await cache.set("item:1", "v")

    asyncio.run(fill())
    invalidator._dispatcher.submit(invalidator.invalidation_for(Item(1, 0)))
    assert asyncio.run(cache.exists("item:1")) is False
    assert invalidator.get_stats()["removed"] == 1
    invalidator.close()


async def test_submissions_after_close_are_dropped_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = InMemoryCache()
    await cache.set("k", "v")
    invalidator = InvalidatorBase(cache)
    await invalidator.aclose()
    invalidator._dispatcher.submit(Invalidation(frozenset({"k"})))
    await invalidator.drain()
    assert await cache.exists("k")
    assert invalidator.get_stats()["dropped"] == 1
    assert "is closed" in caplog.text


async def test_drain_waits_for_the_tasks_of_the_running_loop() -> None:
    cache = InMemoryCache()
    await cache.set("k", "v", tags=["t"])
    invalidator = InvalidatorBase(cache)
    invalidator._dispatcher.submit(Invalidation(frozenset(), frozenset({"t"})))
    assert invalidator.get_stats()["pending"] == 1
    await invalidator.drain()
    assert invalidator.get_stats()["pending"] == 0
    assert not await cache.exists("k")
