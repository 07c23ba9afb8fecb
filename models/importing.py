"""`mandate import`: merge users, accounts, sites and roles from the JSON format of API.md.

A merge, never a deletion: accounts are matched by their path of names, sites by name within
their account, users by email. An existing user keeps their password unless the file gives one;
a user named in a role but not listed is added without a password; a role already held is only
ever raised. A password the file gives an existing user ends all their sessions. A new email that
looks like a known one (TR 39's skeleton) is refused, and so is a key the format does not know.
Every change goes through the operator's own operations (models/user_admin.py, account_admin.py,
memberships.py, credentials.py), so it writes the same audit events as the CLI's commands.
Everything is written in one transaction, or nothing, audit events included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tortoise.transactions import in_transaction

from mandate.models.account_admin import create_account, create_site, find_child
from mandate.models.credentials import set_password_by_operator
from mandate.models.crypto import hash_password
from mandate.models.errors import MandateError
from mandate.models.memberships import add_member, add_site_member
from mandate.models.tables import Role, Site, User
from mandate.models.text import refuse_unstorable, strings_in
from mandate.models.user_admin import create_user
from mandate.models.users import Lookalikes, check_name, check_password_fits, known_emails, normalise_email, password_weakness

# The keys of API.md's format, at each level: anything else is a mistake (a misspelt "acounts"
# would otherwise import nothing and succeed).
FILE_KEYS = ("users", "accounts")
USER_KEYS = ("email", "name", "password")
ACCOUNT_KEYS = ("name", "managers", "members", "sites", "children")
SITE_KEYS = ("name", "members")


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
    users: dict[str, User] = field(default_factory=dict)   # by email
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


def _refuse_unknown_keys(obj: dict, known: tuple[str, ...], where: str) -> None:
    unknown = [key for key in obj if key not in known]
    if unknown:
        raise ImportFileError(f"{where}: unknown key {unknown[0]!r} (the format has {', '.join(map(repr, known))})")


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
    _refuse_unknown_keys(data, FILE_KEYS, "the file")
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
    _refuse_unknown_keys(entry, USER_KEYS, where)
    email = _checked(where, normalise_email, _text(entry, "email", where))
    name = _text(entry, "name", where, required=False)
    password = _text(entry, "password", where, required=False)
    if name is not None:
        name = _checked(where, check_name, name)
    if password is not None:
        # An operator's file may set a weak password (API.md's example sets "..."): the password
        # rule warns, it does not refuse; one that cannot be stored, or is too long, is refused.
        _checked(where, check_password_fits, password)
        if (weakness := password_weakness(password, email)) is not None:
            summary.warnings.append(f"{email}: a weak password: {weakness}")
    user = await User.get_or_none(email=email)
    if user is None:
        user = await _create_user(email, name, password, where, summary)
    elif name is not None or password is not None:
        if name is not None:
            await User.filter(id=user.id).update(name=name)
        if password is not None:
            summary.sessions_ended += await set_password_by_operator(user.id, hash_password(password))
            summary.users_signed_out += 1
        summary.users_updated += 1
    summary.users[email] = user


async def _create_user(email: str, name: str | None, password: str | None, where: str, summary: ImportSummary) -> User:
    if summary.lookalikes is None:  # read once per import, inside its transaction
        summary.lookalikes = await known_emails()
    user = await _checked_async(where, create_user(
        email, name if name is not None else email.split("@")[0], password,
        weak_password_allowed=True, lookalikes=summary.lookalikes,
    ))
    summary.users_created += 1
    return user


async def _checked_async(where: str, operation):
    try:
        return await operation
    except MandateError as exc:
        raise ImportFileError(f"{where}: {exc.message}") from None


async def _user(email: Any, where: str, summary: ImportSummary) -> User:
    if not isinstance(email, str):
        raise ImportFileError(f"{where}: an email must be a string")
    email = _checked(where, normalise_email, email)
    if email not in summary.users:
        user = await User.get_or_none(email=email)
        if user is None:  # named but not listed: added without a password (cannot log in yet)
            user = await _create_user(email, None, None, where, summary)
            summary.warnings.append(f"{email}: added without a password (list them under 'users' to give one)")
        summary.users[email] = user
    return summary.users[email]


async def _merge_account(entry: Any, parent_id: int | None, where: str, summary: ImportSummary) -> None:
    if not isinstance(entry, dict):
        raise ImportFileError(f"{where}: expected an object")
    _refuse_unknown_keys(entry, ACCOUNT_KEYS, where)
    name = _checked(where, check_name, _text(entry, "name", where))
    account = await find_child(name, parent_id)
    if account is None:
        account = await create_account(name, parent_id)
        summary.accounts_created += 1
    for key, role in (("managers", Role.MANAGER), ("members", Role.MEMBER)):
        for j, email in enumerate(_list(entry.get(key), f"{where}.{key}")):
            user = await _user(email, f"{where}.{key}[{j}]", summary)
            if await add_member(account.id, user, role, keep_higher=True) != "unchanged":
                summary.roles_granted += 1
    for j, site_entry in enumerate(_list(entry.get("sites"), f"{where}.sites")):
        await _merge_site(site_entry, account.id, f"{where}.sites[{j}]", summary)
    for j, child in enumerate(_list(entry.get("children"), f"{where}.children")):
        await _merge_account(child, account.id, f"{where}.children[{j}]", summary)


async def _merge_site(entry: Any, account_id: int, where: str, summary: ImportSummary) -> None:
    if not isinstance(entry, dict):
        raise ImportFileError(f"{where}: expected an object")
    _refuse_unknown_keys(entry, SITE_KEYS, where)
    name = _checked(where, check_name, _text(entry, "name", where))
    site = await Site.filter(name=name, account_id=account_id).first()
    if site is None:
        site = await create_site(name, account_id)
        summary.sites_created += 1
    for j, email in enumerate(_list(entry.get("members"), f"{where}.members")):
        user = await _user(email, f"{where}.members[{j}]", summary)
        summary.site_accesses_granted += int(await add_site_member(site, user))
