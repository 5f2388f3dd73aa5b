"""Typing test for @cached: this file must pass ``mypy --strict``.

``test_typing.py`` runs mypy on it (and on ``cached_errors.snippet``, which must
fail exactly where marked); the project's own mypy run checks it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from typing_extensions import assert_type

from stratacache import InMemoryCache
from stratacache._decorators import cached

cache = InMemoryCache()


@cached(cache, ttl=60, tags=["users"])
async def fetch(user_id: int, *, full: bool = False) -> dict[str, int]:
    return {"id": user_id, "full": int(full)}


@cached(cache, key="render:{name}:{times}")
def render(name: str, times: int = 1) -> str:
    return name * times


class Repository:
    @cached(cache)
    async def count(self, table: str) -> int:
        return len(table)

    @cached(cache)
    def label(self, n: int) -> str:
        return str(n)


async def use() -> None:
    assert_type(await fetch(1), dict[str, int])
    assert_type(await fetch(user_id=1, full=True), dict[str, int])
    assert_type(render("a"), str)
    assert_type(render("a", times=2), str)
    assert_type(fetch.key_for(1, full=True), str)
    assert_type(render.key_for("a"), str)
    assert_type(await fetch.invalidate(1), bool)
    assert_type(render.invalidate("a"), bool)

    repo = Repository()
    assert_type(await repo.count("users"), int)
    assert_type(await Repository.count(repo, "users"), int)
    assert_type(repo.label(3), str)
    assert_type(repo.count.key_for("users"), str)

    # A cached function still fits wherever the original did.
    loader: Callable[[int], Awaitable[dict[str, int]]] = fetch
    formatter: Callable[[str], str] = render
    bound: Callable[[str], Awaitable[int]] = repo.count
    assert_type(await loader(2), dict[str, int])
    assert_type(formatter("b"), str)
    assert_type(await bound("posts"), int)
