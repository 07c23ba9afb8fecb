"""The request's DataLoaders over the domain's batch loads, and a look at what one already holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable, Callable, Hashable

from strawberry.dataloader import DataLoader

from mandate.models import grace
from mandate.models.binding import users_bound_to_two_factor
from mandate.models.reach import children_of, sites_of
from mandate.models.users import users_by_id


def children() -> DataLoader:
    return DataLoader(children_of)


def sites() -> DataLoader:
    return DataLoader(sites_of)


def users() -> DataLoader:
    return DataLoader(users_by_id)


def bound_to_two_factor() -> DataLoader:
    async def load(user_ids: list[int]) -> list[bool]:
        bound = await users_bound_to_two_factor(list(user_ids))
        return [user_id in bound for user_id in user_ids]

    return DataLoader(load)


def two_factor_deadlines() -> DataLoader:
    async def load(user_ids: list[int]) -> list[datetime | None]:
        standings = await grace.standings(list(user_ids))
        return [standings[user_id].deadline if user_id in standings else None for user_id in user_ids]

    return DataLoader(load)


def own(load: Callable[[], Awaitable[Any]], user_id: Callable[[], int | None]) -> DataLoader:
    """A field only the user themself reads (the guard lets nobody else's through): however many
    times the caller's own user appears in a document, one load per request."""
    async def load_own(user_ids: list[int]) -> list[Any]:
        assert set(user_ids) == {user_id()}, "a field of one's own, asked for another user"
        value = await load()
        return [value for _ in user_ids]

    return DataLoader(load_own)


_NOT_LOADED = object()


def loaded(loader: DataLoader, key: Hashable) -> Any:
    """What the loader already holds for the key, without awaiting; _NOT_LOADED if nothing yet.

    A resolver that finds its value loaded returns it at once, and graphql-core completes it
    without a coroutine or a task: on a tree of thousands of objects that is most of the time."""
    future = loader.cache_map.get(key)
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return _NOT_LOADED
    return future.result()


def is_loaded(value: Any) -> bool:
    return value is not _NOT_LOADED


async def load_ahead(loader: DataLoader, keys: list[Hashable]) -> list[Any]:
    """The values of these keys, loaded in one call of the loader's batch function for the keys
    it does not hold yet, and kept in it (primed) for the fields that will ask: a whole level of
    a tree without a future and a task per key, which `load_many` would make."""
    missing = [key for key in dict.fromkeys(keys) if loader.cache_map.get(key) is None]
    if missing:
        loader.prime_many(dict(zip(missing, await loader.load_fn(missing), strict=True)))
    return [loaded(loader, key) for key in keys]
