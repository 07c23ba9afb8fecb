"""The operator's users: finding, creating, disabling, resetting their 2FA and listing them.

Each change writes one audit event with no actor (the system), like the API's own actions; a
refused change writes nothing. `mandate import` creates its users here too, so the same events
record them whichever command made them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from mandate.models import audit, crypto, totp
from mandate.models.credentials import end_what_a_password_change_ends
from mandate.models.errors import NOT_FOUND, MandateError, bad_input
from mandate.models.tables import TotpDevice, User
from mandate.models.users import Lookalikes, check_name, check_new_password, check_password_fits, known_emails, normalise_email


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


async def create_user(
    email: str, name: str, password: str | None, *,
    weak_password_allowed: bool = False, lookalikes: Lookalikes | None = None,
) -> User:
    """A new user; without a password they cannot log in until one is given (`mandate import`).
    The password obeys the password rule (users.py), unless `weak_password_allowed` (an import
    file, which warns instead). Refused when the email looks like an existing user's (TR 39's
    confusable skeleton): pass the `lookalikes` of a larger transaction that creates several
    users, else they are read here."""
    email, name = normalise_email(email), check_name(name)
    if password is not None:
        check_password_fits(password) if weak_password_allowed else check_new_password(password, email)
    password_hash = crypto.hash_password(password) if password is not None else None
    try:
        async with in_transaction():
            (lookalikes if lookalikes is not None else await known_emails()).add(email)
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


async def reset_two_factor(user: User) -> bool:
    """The operator removes the user's 2FA (device, recovery codes, any pending enrolment or
    replacement) and ends every session of theirs, through the one place 2FA is removed; refused
    for nobody, with or without 2FA. Audited as a manager's reset is, with no actor and no
    account: managers whose accounts bind the user see it. Where 2FA binds them, their next
    login must enrol. Returns whether they had 2FA."""
    async with in_transaction():
        had_two_factor = await TotpDevice.exists(user_id=user.id)
        await totp.remove_two_factor(user.id)
        await audit.record(audit.TWO_FACTOR_RESET, subject_id=user.id)
    return had_two_factor


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    two_factor: bool   # 2FA set up
    disabled: bool     # no password: cannot log in (disabled, or never given one)


async def with_two_factor(user_ids: list[int] | None = None) -> set[int]:
    """Of these users (all with None), the ones who have set up 2FA."""
    query = TotpDevice.all() if user_ids is None else TotpDevice.filter(user_id__in=user_ids)
    return set(await query.values_list("user_id", flat=True))


async def list_users() -> list[UserRow]:
    """Every user, by email."""
    rows = await User.all().order_by("email").values_list("id", "email", "name")
    enrolled = await with_two_factor()
    no_password = set(await User.filter(password_hash__isnull=True).values_list("id", flat=True))
    return [UserRow(pk, email, name, pk in enrolled, pk in no_password) for pk, email, name in rows]
