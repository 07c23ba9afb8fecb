"""Who can reach which account, with which role, and what enforcement covers each account.

A role on an account reaches all of its descendants and their sites; the strongest role on the
account or an ancestor is the effective one. A site member reaches the site's account, and of it
only their own sites. An account is enforced when it or an ancestor has its switch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from mandate.models.errors import FORBIDDEN, MandateError
from mandate.models.sql import as_datetime, fetch_rows, in_list
from mandate.models.tables import Membership, Role, Site, SiteMembership

ACCOUNT_COLUMNS = "id, name, parent_id, enforced, grace_period_hours, enforcement_changed_at, enforcement_changed_by_id"


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    name: str
    parent_id: int | None
    enforced: bool
    grace_period_hours: int
    changed_at: datetime | None
    changed_by_id: int | None

    @classmethod
    def from_db(cls, row: Mapping[str, Any]) -> AccountRow:
        return cls(
            id=row["id"],
            name=row["name"],
            parent_id=row["parent_id"],
            enforced=bool(row["enforced"]),
            grace_period_hours=int(row["grace_period_hours"]),
            changed_at=as_datetime(row["enforcement_changed_at"]),
            changed_by_id=row["enforcement_changed_by_id"],
        )


def stronger(a: Role | None, b: Role | None) -> Role | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.rank >= b.rank else b


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as one viewer sees it."""

    row: AccountRow
    role: Role | None                  # the viewer's effective role here
    own_site_ids: frozenset[int] | None  # site-only viewers: their sites; role holders: None
    source: AccountRow | None          # the nearest enforced account, this one or an ancestor

    @property
    def readable(self) -> bool:
        """False for an account shown only as an enforcement source (id and name only)."""
        return self.role is not None or self.own_site_ids is not None

    @property
    def is_manager(self) -> bool:
        return self.role is Role.MANAGER

    @property
    def enforced(self) -> bool:
        return self.source is not None

    def require_readable(self) -> None:
        if not self.readable:
            raise MandateError(FORBIDDEN, "You have no role on that account.")

    def require_manager(self, message: str = "Only managers of this account may read that.") -> None:
        if not self.is_manager:
            raise MandateError(FORBIDDEN, message)

    @property
    def shows_tree(self) -> bool:
        """Parent and children show to role holders only: a site member sees their sites' account
        alone, and an account shown as an enforcement source shows nothing around it."""
        return self.role is not None

    def visible_sites(self, rows: Sequence[Mapping]) -> Sequence[Mapping]:
        """Of the account's sites, those the viewer sees: all with a role, their own as a site member."""
        own = self.own_site_ids
        return rows if own is None else [row for row in rows if row["id"] in own]

    def source_view(self, seen: AccountView | None) -> AccountView | None:
        """This account's enforcement source as the viewer may see it: as they see it when they
        reach it (`seen`), else by id and name only."""
        if self.source is None:
            return None
        if self.source.id == self.row.id:
            return self
        if seen is None or not seen.readable:
            return AccountView(self.source, None, None, self.source)
        return seen

    def below(self, child: AccountRow, direct_role: Role | None) -> AccountView:
        """The view of a child account, derived from this (its parent's) view."""
        return AccountView(
            row=child,
            role=stronger(self.role, direct_role),
            own_site_ids=None,
            source=child if child.enforced else self.source,
        )


async def chains(account_ids: list[int]) -> dict[int, list[AccountRow]]:
    """Each account with its ancestors, itself first, in one statement."""
    if not account_ids:
        return {}
    rows = await fetch_rows(
        f"""
        WITH RECURSIVE up(anchor_id, id, depth) AS (
            SELECT id, id, 0 FROM accounts WHERE id IN ({in_list(account_ids)})
            UNION ALL
            SELECT up.anchor_id, a.parent_id, up.depth + 1
            FROM accounts a JOIN up ON a.id = up.id
            WHERE a.parent_id IS NOT NULL
        )
        SELECT up.anchor_id, up.depth, a.{ACCOUNT_COLUMNS.replace(", ", ", a.")}
        FROM up JOIN accounts a ON a.id = up.id
        ORDER BY up.anchor_id, up.depth
        """,
        account_ids,
    )
    result: dict[int, list[AccountRow]] = {}
    for row in rows:
        result.setdefault(row["anchor_id"], []).append(AccountRow.from_db(row))
    return result


async def subtree(account_id: int) -> list[tuple[int, AccountRow]]:
    """The accounts strictly below one account, with their depth, parents before children."""
    rows = await fetch_rows(
        f"""
        WITH RECURSIVE down(id, depth) AS (
            SELECT id, 0 FROM accounts WHERE id = ?
            UNION ALL
            SELECT a.id, down.depth + 1 FROM accounts a JOIN down ON a.parent_id = down.id
        )
        SELECT down.depth, a.{ACCOUNT_COLUMNS.replace(", ", ", a.")}
        FROM down JOIN accounts a ON a.id = down.id
        WHERE down.depth > 0
        ORDER BY down.depth, a.name, a.id
        """,
        [account_id],
    )
    return [(row["depth"], AccountRow.from_db(row)) for row in rows]


# Batch loads for the levels of a tree, one statement per level, in the order of the keys given
# (a DataLoader's batch functions). Raw SQL: the ORM's query building costs more than the query
# itself when the IN list holds a thousand ids.
def _grouped(rows: Sequence[Mapping], keys: list[int], column: str, make=lambda row: row) -> list[list]:
    """Rows grouped by `column`, one list per key, in the keys' order."""
    groups: dict[int, list] = {key: [] for key in keys}
    for row in rows:
        groups[row[column]].append(make(row))
    return [groups[key] for key in keys]


async def children_of(parent_ids: list[int]) -> list[list[AccountRow]]:
    rows = await fetch_rows(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE parent_id IN ({in_list(parent_ids)}) ORDER BY name, id",
        parent_ids,
    )
    return _grouped(rows, parent_ids, "parent_id", AccountRow.from_db)


async def sites_of(account_ids: list[int]) -> list[list[Mapping]]:
    rows = await fetch_rows(
        f"SELECT id, name, account_id FROM sites WHERE account_id IN ({in_list(account_ids)}) ORDER BY name, id",
        account_ids,
    )
    return _grouped(rows, account_ids, "account_id")


async def site(site_id: int) -> dict | None:
    rows = await Site.filter(id=site_id).values("id", "name", "account_id")
    return rows[0] if rows else None


def nearest_enforced(chain: list[AccountRow]) -> AccountRow | None:
    return next((row for row in chain if row.enforced), None)


class Viewer:
    """One user's reach, loaded once per request (never cached across requests)."""

    def __init__(self, user_id: int, roles: dict[int, Role], site_accounts: dict[int, frozenset[int]]):
        self.user_id = user_id
        self.roles = roles                  # direct memberships: account id -> role
        self.site_accounts = site_accounts  # account id -> the viewer's site ids on it

    @classmethod
    async def load(cls, user_id: int) -> Viewer:
        roles = {
            account_id: Role(role)
            for account_id, role in await Membership.filter(user_id=user_id).values_list(
                "account_id", "role"
            )
        }
        site_accounts: dict[int, set[int]] = {}
        for site_id, account_id in await SiteMembership.filter(user_id=user_id).values_list(
            "site_id", "site__account_id"
        ):
            site_accounts.setdefault(account_id, set()).add(site_id)
        return cls(user_id, roles, {a: frozenset(s) for a, s in site_accounts.items()})

    def view_from_chain(self, chain: list[AccountRow]) -> AccountView:
        """The view of chain[0], given its ancestors; unreachable accounts are source-only."""
        role = None
        for row in chain:
            role = stronger(role, self.roles.get(row.id))
        account = chain[0]
        own_sites = None if role is not None else self.site_accounts.get(account.id)
        return AccountView(account, role, own_sites, nearest_enforced(chain))

    async def views(self, account_ids: list[int]) -> dict[int, AccountView]:
        """Views of any accounts (reachable or not: check `readable`), in one statement."""
        return {aid: self.view_from_chain(chain) for aid, chain in (await chains(account_ids)).items()}

    async def view(self, account_id: int) -> AccountView | None:
        """The view of an account the viewer can reach, else None."""
        view = (await self.views([account_id])).get(account_id)
        return view if view is not None and view.readable else None

    async def tops(self) -> list[AccountView]:
        """The tops of the trees the viewer reaches: no reachable ancestor above them."""
        anchors = sorted(set(self.roles) | set(self.site_accounts))
        result = []
        for account_id, chain in (await chains(anchors)).items():
            if any(row.id in self.roles for row in chain[1:]):
                continue  # a role further up reaches this one already
            result.append(self.view_from_chain(chain))
        return sorted(result, key=lambda v: (v.row.name, v.row.id))

    async def site_view(self, site: dict) -> AccountView | None:
        """The view of a site's account, when the viewer may see that site; else None."""
        view = await self.view(site["account_id"])
        if view is None or not view.visible_sites([site]):
            return None
        return view

    def direct_role(self, account_id: int) -> Role | None:
        return self.roles.get(account_id)
