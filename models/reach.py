"""Who can reach which account, with which role, and what enforcement covers each account.

A role on an account reaches all of its descendants and their sites; the strongest role on the
account or an ancestor is the effective one. A site member reaches the site's account, and of it
only their own sites. An account is enforced when it or an ancestor has its switch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mandate.models.sql import fetch, in_list
from mandate.models.tables import Membership, Role, SiteMembership

ACCOUNT_COLUMNS = "id, name, parent_id, enforced, enforcement_changed_at, enforcement_changed_by_id"


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    name: str
    parent_id: int | None
    enforced: bool
    changed_at: datetime | None
    changed_by_id: int | None

    @classmethod
    def from_db(cls, row: dict) -> AccountRow:
        changed_at = row["enforcement_changed_at"]
        if isinstance(changed_at, str):  # SQLite returns raw text from raw queries
            changed_at = datetime.fromisoformat(changed_at)
        return cls(
            id=row["id"],
            name=row["name"],
            parent_id=row["parent_id"],
            enforced=bool(row["enforced"]),
            changed_at=changed_at,
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
    rows = await fetch(
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
    rows = await fetch(
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

    def direct_role(self, account_id: int) -> Role | None:
        return self.roles.get(account_id)
