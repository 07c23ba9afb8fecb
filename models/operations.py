"""What an operator does from the command line: users, accounts, roles, reports, key rotation.

Each change is one transaction and writes one audit event with no actor (the system), like the
API's own actions; a refused change writes nothing. The rules are the API's: who must use 2FA
and compliance come from models/enforcement.py, the account tree from models/reach.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator

from cryptography.fernet import InvalidToken
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from mandate.models import audit, clock, crypto
from mandate.models.credentials import end_what_a_password_change_ends
from mandate.models.enforcement import BoundUser, bound_users
from mandate.models.errors import NOT_FOUND, MandateError, bad_input
from mandate.models.reach import AccountRow, chains, nearest_enforced, subtree
from mandate.models.sql import fetch
from mandate.models.tables import Account, AuditEvent, Membership, Role, Session, User
from mandate.models.users import check_name, check_password, known_emails, normalise_email


def _no_account(account_id: int) -> MandateError:
    return MandateError(NOT_FOUND, f"There is no account {account_id}.")


def _no_user(reference: int | str) -> MandateError:
    return MandateError(NOT_FOUND, f"There is no user {reference}.")


async def find_user(reference: int | str) -> User:
    """A user by id or by email."""
    if isinstance(reference, int):
        user = await User.get_or_none(id=reference)
    else:
        user = await User.get_or_none(email=normalise_email(reference))
    if user is None:
        raise _no_user(reference)
    return user


async def find_account(account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise _no_account(account_id)
    return account


# -- users -----------------------------------------------------------------------------------------


async def create_user(email: str, name: str, password: str | None) -> User:
    """A new user; without a password they cannot log in until one is given (`mandate import`).
    Refused when the email looks like an existing user's (TR 39's confusable skeleton)."""
    email, name = normalise_email(email), check_name(name)
    password_hash = crypto.hash_password(check_password(password)) if password is not None else None
    try:
        async with in_transaction():
            (await known_emails()).add(email)
            user = await User.create(email=email, name=name, password_hash=password_hash)
            await audit.record(audit.USER_CREATED, subject_id=user.id)
    except IntegrityError:  # the unique email: checked by the database, so a race cannot pass
        raise bad_input(f"A user {email} exists already.", "email") from None
    return user


async def disable_user(user: User) -> int:
    """The user can no longer log in (their password is removed) and every session of theirs ends
    now; roles and 2FA stay, so giving a password back restores them as they were. Returns the
    number of sessions ended."""
    async with in_transaction():
        await User.filter(id=user.id).update(password_hash=None)
        ended = await end_what_a_password_change_ends(user.id)
        await audit.record(audit.USER_DISABLED, subject_id=user.id)
    return ended


# -- accounts --------------------------------------------------------------------------------------


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


# -- roles -----------------------------------------------------------------------------------------


async def add_member(account_id: int, user: User, role: Role) -> str:
    """Give a user a role on an account, or change the one they hold there. Returns what was done:
    "added", "changed" or "unchanged"."""
    async with in_transaction():
        await find_account(account_id)
        held = await Membership.get_or_none(user_id=user.id, account_id=account_id)
        if held is not None and held.role is role:
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


# -- reports ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceReport:
    account: AccountRow
    source: AccountRow | None   # the nearest account, this one or an ancestor, whose switch is on
    users: list[BoundUser]      # everyone this account's enforcement binds, by email

    @property
    def pending(self) -> list[BoundUser]:
        return [u for u in self.users if not u.enrolled]


async def compliance_report(account_id: int) -> ComplianceReport:
    """The same users and counts as the API's `Account.twoFactorCompliance`."""
    chain = (await chains([account_id])).get(account_id)
    if chain is None:
        raise _no_account(account_id)
    return ComplianceReport(chain[0], nearest_enforced(chain), await bound_users(account_id))


async def audit_events_since(since: datetime, batch: int = 1000) -> AsyncIterator[dict]:
    """Every audit event at or after `since`, oldest first, read a batch at a time."""
    after_id = 0
    while True:
        rows = await AuditEvent.filter(at__gte=since, id__gt=after_id).order_by("id").limit(batch).values(
            "id", "at", "action", "actor_id", "actor__email", "subject_id", "subject__email",
            "account_id", "account__name", "client_address",
        )
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after_id = rows[-1]["id"]


# -- secrets at rest -------------------------------------------------------------------------------


class SecretsUnreadable(Exception):
    """Some stored TOTP secrets decrypt under none of the configured keys."""

    def __init__(self, user_ids: list[int]) -> None:
        super().__init__(user_ids)
        self.user_ids = user_ids


@dataclass(frozen=True)
class Rotation:
    users: int     # users whose secrets were re-encrypted
    secrets: int   # secrets re-encrypted (a confirmed one, and each session's pending one)
    skipped: int   # users whose secrets a request changed meanwhile (already under the server's keys)


async def reencrypt_totp_secrets() -> Rotation:
    """Re-encrypt every stored TOTP secret, the devices' and the sessions' pending ones, under
    the first key of MANDATE_SECRET_KEY, in one transaction. Refuses, writing nothing, when any
    secret decrypts under none of the keys. Each row is written only if it still holds what was
    read, so a confirmation racing the rotation is never undone."""
    cipher = crypto.cipher()

    def rotated(token: str) -> str:
        return cipher.rotate(token.encode()).decode()

    async with in_transaction():
        # An ended session's enrolment can never be confirmed: dropped, not carried to the new key.
        await Session.filter(
            Q(revoked_at__isnull=False) | Q(expires_at__lte=clock.now()), totp_pending_secret__isnull=False
        ).update(totp_pending_secret=None)
        from mandate.models.tables import TotpDevice  # here: the module is being split meanwhile

        confirmed = await TotpDevice.all().order_by("id").values_list("id", "user_id", "secret")
        pending = await Session.filter(totp_pending_secret__isnull=False).order_by("id").values_list(
            "id", "user_id", "totp_pending_secret"
        )
        device_updates, session_updates, unreadable = [], [], set()
        for device_id, user_id, secret in confirmed:
            try:
                device_updates.append((device_id, user_id, secret, rotated(secret)))
            except InvalidToken:
                unreadable.add(user_id)
        for session_id, user_id, secret in pending:
            try:
                session_updates.append((session_id, user_id, secret, rotated(secret)))
            except InvalidToken:
                unreadable.add(user_id)
        if unreadable:
            raise SecretsUnreadable(sorted(unreadable))
        written: set[int] = set()
        skipped: set[int] = set()
        secrets = 0
        for device_id, user_id, secret, new_secret in device_updates:
            if await TotpDevice.filter(id=device_id, secret=secret).update(secret=new_secret):
                written.add(user_id)
                secrets += 1
            else:
                skipped.add(user_id)
        for session_id, user_id, secret, new_secret in session_updates:
            if await Session.filter(id=session_id, totp_pending_secret=secret).update(totp_pending_secret=new_secret):
                written.add(user_id)
                secrets += 1
            else:
                skipped.add(user_id)
        await audit.record(audit.SECRETS_REENCRYPTED)
    return Rotation(len(written), secrets, len(skipped))
