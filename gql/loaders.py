"""Batch loads, one statement per kind per request level ("load X by Y")."""

from __future__ import annotations

from models.enforcement import users_bound_to_two_factor
from models.reach import AccountRow
from models.tables import Account, Site, User

_ACCOUNT_FIELDS = (
    "id", "name", "parent_id", "enforced", "enforcement_changed_at", "enforcement_changed_by_id"
)


async def load_children(parent_ids: list[int]) -> list[list[AccountRow]]:
    rows = await Account.filter(parent_id__in=parent_ids).order_by("name", "id").values(*_ACCOUNT_FIELDS)
    by_parent: dict[int, list[AccountRow]] = {pid: [] for pid in parent_ids}
    for row in rows:
        by_parent[row["parent_id"]].append(AccountRow.from_db(row))
    return [by_parent[pid] for pid in parent_ids]


async def load_sites(account_ids: list[int]) -> list[list[dict]]:
    rows = await Site.filter(account_id__in=account_ids).order_by("name", "id").values("id", "name", "account_id")
    by_account: dict[int, list[dict]] = {aid: [] for aid in account_ids}
    for row in rows:
        by_account[row["account_id"]].append(row)
    return [by_account[aid] for aid in account_ids]


async def load_users(user_ids: list[int]) -> list[User | None]:
    users = {u.id: u for u in await User.filter(id__in=user_ids)}
    return [users.get(uid) for uid in user_ids]


async def load_bound_to_two_factor(user_ids: list[int]) -> list[bool]:
    bound = await users_bound_to_two_factor(list(user_ids))
    return [uid in bound for uid in user_ids]
