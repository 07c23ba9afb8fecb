"""Batch loads, one statement per kind per request level ("load X by Y")."""

from __future__ import annotations

from typing import Any, Hashable

from strawberry.dataloader import DataLoader

from mandate.models.enforcement import users_bound_to_two_factor
from mandate.models.reach import ACCOUNT_COLUMNS, AccountRow
from mandate.models.sql import fetch, in_list
from mandate.models.tables import User


# Raw SQL for the two loads a tree makes per level: the ORM's query building costs more than
# the query itself when the IN list holds a thousand ids.
async def load_children(parent_ids: list[int]) -> list[list[AccountRow]]:
    rows = await fetch(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE parent_id IN ({in_list(parent_ids)}) ORDER BY name, id",
        parent_ids,
    )
    by_parent: dict[int, list[AccountRow]] = {pid: [] for pid in parent_ids}
    for row in rows:
        by_parent[row["parent_id"]].append(AccountRow.from_db(row))
    return [by_parent[pid] for pid in parent_ids]


async def load_sites(account_ids: list[int]) -> list[list[dict]]:
    rows = await fetch(
        f"SELECT id, name, account_id FROM sites WHERE account_id IN ({in_list(account_ids)}) ORDER BY name, id",
        account_ids,
    )
    by_account: dict[int, list[dict]] = {aid: [] for aid in account_ids}
    for row in rows:
        by_account[row["account_id"]].append(row)
    return [by_account[aid] for aid in account_ids]


async def load_users(user_ids: list[int]) -> list[User | None]:
    users = {u.id: u for u in await User.filter(id__in=user_ids).select_related("totp_device")}
    return [users.get(uid) for uid in user_ids]


async def load_bound_to_two_factor(user_ids: list[int]) -> list[bool]:
    bound = await users_bound_to_two_factor(list(user_ids))
    return [uid in bound for uid in user_ids]


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
