"""Roles on accounts and access to sites, given and taken away by the operator (the CLI's
`member` commands and `mandate import`). Each change writes one audit event with no actor."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from mandate.models import audit
from mandate.models.account_admin import find_account
from mandate.models.errors import NOT_FOUND, MandateError
from mandate.models.tables import Membership, Role, Site, SiteMembership, User


async def add_member(account_id: int, user: User, role: Role, *, keep_higher: bool = False) -> str:
    """Give a user a role on an account, or change the one they hold there; with `keep_higher`, a
    role held that ranks above this one stays (the import only ever raises). Returns what was
    done: "added", "changed" or "unchanged"."""
    async with in_transaction():
        await find_account(account_id)
        held = await Membership.get_or_none(user_id=user.id, account_id=account_id)
        if held is not None and (held.role is role or keep_higher and held.role.rank > role.rank):
            return "unchanged"
        if held is None:
            await Membership.create(user_id=user.id, account_id=account_id, role=role)
            action, done = audit.MEMBER_ADDED, "added"
        else:
            await Membership.filter(id=held.id).update(role=role)
            action, done = audit.MEMBER_ROLE_CHANGED, "changed"
        await audit.record(action, subject_id=user.id, account_id=account_id)
    return done


async def remove_member(account_id: int, user: User) -> Role:
    """Take away a user's role on an account (roles above or below it are theirs still)."""
    async with in_transaction():
        await find_account(account_id)
        held = await Membership.get_or_none(user_id=user.id, account_id=account_id)
        if held is None:
            raise MandateError(NOT_FOUND, f"{user.email} has no role on account {account_id}.")
        await Membership.filter(id=held.id).delete()
        await audit.record(audit.MEMBER_REMOVED, subject_id=user.id, account_id=account_id)
    return held.role


async def add_site_member(site: Site, user: User) -> bool:
    """Give a user access to one site; False when they have it already."""
    async with in_transaction():
        _, created = await SiteMembership.get_or_create(user_id=user.id, site_id=site.id)
        if created:
            await audit.record(audit.SITE_MEMBER_ADDED, subject_id=user.id, account_id=site.account_id)
    return created
