"""The operator's accounts and sites: finding (by id or by path of names), creating, moving and
listing them. Each change writes one audit event with no actor; `mandate import` creates its
accounts and sites here too."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from mandate.models import audit
from mandate.models.errors import NOT_FOUND, MandateError, bad_input
from mandate.models.reach import AccountRow, chains, nearest_enforced, subtree
from mandate.models.sql import fetch
from mandate.models.tables import Account, Site
from mandate.models.users import check_name


def no_account(account_id: int) -> MandateError:
    """NOT_FOUND for an account id."""
    return MandateError(NOT_FOUND, f"There is no account {account_id}.")


async def find_account(account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise no_account(account_id)
    return account


async def find_child(name: str, parent_id: int | None) -> Account | None:
    """The account of that name under a parent (at the top with None), if any."""
    return await Account.filter(name=name, parent_id=parent_id).order_by("id").first()


async def find_account_by_path(names: list[str]) -> Account:
    """An account by its path of names from the top: ["Northwind Health", "Riverside Dental"].
    NOT_FOUND when no account has that path; BAD_USER_INPUT when two siblings share a name on it."""
    account: Account | None = None
    for depth, name in enumerate(names):
        found = await Account.filter(name=name.strip(), parent_id=account.id if account else None).limit(2)
        path = "/".join(names[: depth + 1])
        if not found:
            raise MandateError(NOT_FOUND, f"No account has the path {path!r}.")
        if len(found) > 1:
            raise bad_input(f"Accounts {found[0].id} and {found[1].id} both have the path {path!r}: give an id.",
                            "account")
        account = found[0]
    if account is None:
        raise MandateError(NOT_FOUND, "An empty path names no account.")
    return account


async def _refuse_name_taken(name: str, parent_id: int | None, except_id: int | None = None) -> None:
    """Names are unique among siblings: `mandate import` finds accounts by their path of names."""
    query = Account.filter(name=name, parent_id=parent_id)
    if except_id is not None:
        query = query.exclude(id=except_id)
    if await query.exists():
        where = f"under account {parent_id}" if parent_id is not None else "at the top"
        raise bad_input(f"An account named {name!r} exists already {where}.", "name")


async def create_account(name: str, parent_id: int | None) -> Account:
    name = check_name(name)
    async with in_transaction():
        if parent_id is not None:
            await find_account(parent_id)
        await _refuse_name_taken(name, parent_id)
        account = await Account.create(name=name, parent_id=parent_id)
        await audit.record(audit.ACCOUNT_CREATED, account_id=account.id)
    return account


async def _lock_the_tree() -> None:
    """Moves one at a time on PostgreSQL, so two crossing moves cannot make a cycle (each would
    pass its check against the other's old tree). SQLite has one writer at a time already."""
    from tortoise import connections

    if connections.get("default").capabilities.dialect == "postgres":
        await fetch("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")


async def move_account(account_id: int, parent_id: int | None) -> bool:
    """Put an account (with its subtree and sites) under another, or at the top with None.
    Its users' duties follow the new tree from their next request. False when already there."""
    async with in_transaction():
        await _lock_the_tree()
        account = await find_account(account_id)
        if account.parent_id == parent_id:
            return False
        if parent_id is not None:
            await find_account(parent_id)
            below = {row.id for _, row in await subtree(account_id)}
            if parent_id == account_id or parent_id in below:
                raise bad_input("An account cannot move under itself or one of its own descendants.", "parent")
        await _refuse_name_taken(account.name, parent_id, except_id=account_id)
        await Account.filter(id=account_id).update(parent_id=parent_id)
        await audit.record(audit.ACCOUNT_MOVED, account_id=account_id)
    return True


@dataclass(frozen=True)
class TreeNode:
    row: AccountRow
    source: AccountRow | None   # the nearest account, this one or an ancestor, whose switch is on
    children: list[TreeNode]

    @property
    def enforced(self) -> bool:
        return self.source is not None


async def account_forest() -> list[TreeNode]:
    """Every tree, tops first, children by name, each account with its effective enforcement."""
    by_id = await chains(list(await Account.all().values_list("id", flat=True)))
    below: dict[int | None, list[AccountRow]] = {}
    for chain in sorted(by_id.values(), key=lambda chain: (chain[0].name, chain[0].id)):
        below.setdefault(chain[0].parent_id, []).append(chain[0])

    def grown(row: AccountRow) -> TreeNode:
        return TreeNode(row, nearest_enforced(by_id[row.id]), [grown(child) for child in below.get(row.id, [])])

    return [grown(top) for top in below.get(None, [])]


async def create_site(name: str, account_id: int) -> Site:
    name = check_name(name)
    async with in_transaction():
        await find_account(account_id)
        site = await Site.create(name=name, account_id=account_id)
        await audit.record(audit.SITE_CREATED, account_id=account_id)
    return site
