"""`mandate import`: merge users, accounts, sites and roles from the JSON format of API.md.

A merge, never a deletion: accounts are matched by their path of names, sites by name within
their account, users by email. An existing user keeps their password unless the file gives one;
a user named in a role but not listed is added without a password; a role already held is only
ever raised. A password the file gives an existing user ends all their sessions. A new email that
looks like a known one (TR 39's skeleton) is refused. Everything is written in one transaction,
or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tortoise.transactions import in_transaction

from mandate.models.credentials import set_password_by_operator
from mandate.models.crypto import hash_password
from mandate.models.errors import MandateError
from mandate.models.tables import Account, Membership, Role, Site, SiteMembership, User
from mandate.models.text import refuse_unstorable, strings_in
from mandate.models.users import MIN_PASSWORD_LENGTH, Lookalikes, check_name, check_password, known_emails, normalise_email


class ImportFileError(ValueError):
    """The file does not follow the format; the message says where."""


@dataclass
class ImportSummary:
    users_created: int = 0
    users_updated: int = 0
    accounts_created: int = 0
    sites_created: int = 0
    roles_granted: int = 0
    site_accesses_granted: int = 0
    users_signed_out: int = 0   # existing users given a password: all their sessions ended
    sessions_ended: int = 0     # of which this many were live
    user_ids: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    lookalikes: Lookalikes | None = field(default=None, repr=False)

    def __str__(self) -> str:
        signed_out = (
            f"; sessions ended: {self.users_signed_out} users ({self.sessions_ended} live)" if self.users_signed_out else ""
        )
        return (
            f"users: {self.users_created} created, {self.users_updated} updated; "
            f"accounts: {self.accounts_created} created; sites: {self.sites_created} created; "
            f"roles: {self.roles_granted} granted; site access: {self.site_accesses_granted} granted{signed_out}"
        )


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImportFileError(f"{where}: expected a list")
    return value


def _text(obj: dict, key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ImportFileError(f"{where}: '{key}' must be a string")
    return value


def _checked(where: str, check, value):
    try:
        return check(value)
    except MandateError as exc:
        raise ImportFileError(f"{where}: {exc.message}") from None


async def import_data(data: Any) -> ImportSummary:
    if not isinstance(data, dict):
        raise ImportFileError("the file must hold a JSON object with 'users' and/or 'accounts'")
    for where, text in strings_in(data):  # every string of the file, keys included, before anything is read
        _checked(where, refuse_unstorable, text)
    summary = ImportSummary()
    async with in_transaction():
        for i, entry in enumerate(_list(data.get("users"), "users")):
            await _merge_user(entry, f"users[{i}]", summary)
        for i, entry in enumerate(_list(data.get("accounts"), "accounts")):
            await _merge_account(entry, None, f"accounts[{i}]", summary)
    return summary


async def _merge_user(entry: Any, where: str, summary: ImportSummary) -> None:
    if not isinstance(entry, dict):
        raise ImportFileError(f"{where}: expected an object")
    email = _checked(where, normalise_email, _text(entry, "email", where))
    name = _text(entry, "name", where, required=False)
    password = _text(entry, "password", where, required=False)
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = _checked(where, check_name, name)
    password_hash = None
    if password is not None:
        # An operator's file may set a short password (API.md's example does): warned, not refused.
        _checked(where, lambda p: check_password(p, min_length=1), password)
        if len(password) < MIN_PASSWORD_LENGTH:
            summary.warnings.append(f"{email}: a password under {MIN_PASSWORD_LENGTH} characters is weak")
        password_hash = hash_password(password)
    user = await User.get_or_none(email=email)
    if user is None:
        if password_hash is not None:
            changes["password_hash"] = password_hash
        user = await _create_user(email, where, summary, **changes)
    elif changes or password_hash is not None:
        if changes:
            await User.filter(id=user.id).update(**changes)
        if password_hash is not None:
            summary.sessions_ended += await set_password_by_operator(user.id, password_hash)
            summary.users_signed_out += 1
        summary.users_updated += 1
    summary.user_ids[email] = user.id


async def _create_user(email: str, where: str, summary: ImportSummary, **fields: str) -> User:
    if summary.lookalikes is None:  # read once per import, inside its transaction
        summary.lookalikes = await known_emails()
    _checked(where, summary.lookalikes.add, email)
    fields.setdefault("name", email.split("@")[0])
    summary.users_created += 1
    return await User.create(email=email, **fields)


async def _user_id(email: Any, where: str, summary: ImportSummary) -> int:
    if not isinstance(email, str):
        raise ImportFileError(f"{where}: an email must be a string")
    email = _checked(where, normalise_email, email)
    if email not in summary.user_ids:
        user = await User.get_or_none(email=email)
        if user is None:  # named but not listed: added without a password (cannot log in yet)
            user = await _create_user(email, where, summary)
            summary.warnings.append(f"{email}: added without a password (list them under 'users' to give one)")
        summary.user_ids[email] = user.id
    return summary.user_ids[email]


async def _merge_account(entry: Any, parent: Account | None, where: str, summary: ImportSummary) -> None:
    if not isinstance(entry, dict):
        raise ImportFileError(f"{where}: expected an object")
    name = _checked(where, check_name, _text(entry, "name", where))
    account = await Account.filter(name=name, parent_id=parent.id if parent else None).first()
    if account is None:
        account = await Account.create(name=name, parent_id=parent.id if parent else None)
        summary.accounts_created += 1
    for key, role in (("managers", Role.MANAGER), ("members", Role.MEMBER)):
        for j, email in enumerate(_list(entry.get(key), f"{where}.{key}")):
            await _grant(await _user_id(email, f"{where}.{key}[{j}]", summary), account.id, role, summary)
    for j, site_entry in enumerate(_list(entry.get("sites"), f"{where}.sites")):
        await _merge_site(site_entry, account, f"{where}.sites[{j}]", summary)
    for j, child in enumerate(_list(entry.get("children"), f"{where}.children")):
        await _merge_account(child, account, f"{where}.children[{j}]", summary)


async def _grant(user_id: int, account_id: int, role: Role, summary: ImportSummary) -> None:
    existing = await Membership.get_or_none(user_id=user_id, account_id=account_id)
    if existing is None:
        await Membership.create(user_id=user_id, account_id=account_id, role=role)
        summary.roles_granted += 1
    elif existing.role.rank < role.rank:
        await Membership.filter(id=existing.id).update(role=role)
        summary.roles_granted += 1


async def _merge_site(entry: Any, account: Account, where: str, summary: ImportSummary) -> None:
    if not isinstance(entry, dict):
        raise ImportFileError(f"{where}: expected an object")
    name = _checked(where, check_name, _text(entry, "name", where))
    site = await Site.filter(name=name, account_id=account.id).first()
    if site is None:
        site = await Site.create(name=name, account_id=account.id)
        summary.sites_created += 1
    for j, email in enumerate(_list(entry.get("members"), f"{where}.members")):
        user_id = await _user_id(email, f"{where}.members[{j}]", summary)
        _, created = await SiteMembership.get_or_create(user_id=user_id, site_id=site.id)
        summary.site_accesses_granted += int(created)
