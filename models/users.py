"""Users: emails, names, passwords."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Iterable

from disarm import skeleton_key
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from mandate.models.errors import bad_input
from mandate.models.sql import fetch
from mandate.models.tables import User
from mandate.models.text import refuse_unstorable

# Deliberately plain: one @, no spaces, a dot in the domain; the mailbox decides the rest.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", re.ASCII)
# Counted as NIST SP 800-63B counts: each Unicode code point of the password as sent is one
# character (no normalisation: the password is hashed as typed, and so checked at login).
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 8

# Characters nobody sees, so two emails that differ by one look the same: controls, format
# characters (zero-width spaces and joiners, bidi marks), private use, separators...
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Zs", "Zl", "Zp"})
# ...and the default-ignorable code points (Unicode's DerivedCoreProperties) that unicodedata
# files under letters, marks or unassigned: fillers, variation selectors, reserved ranges.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2060-\u206f\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U000e0000-\U000e0fff]"
)


def _invisible(text: str) -> str | None:
    """The first character of the text that shows nothing, if any."""
    for char in text:
        if not char.isascii() and (unicodedata.category(char) in _INVISIBLE_CATEGORIES or _IGNORABLE.match(char)):
            return char
    return None


def normalise_email(email: str) -> str:
    email = refuse_unstorable(email, "email").strip().lower()
    if (char := _invisible(email)) is not None:
        raise bad_input(f"An email may not hold invisible or format characters (U+{ord(char):04X}).", "email")
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise bad_input("That is not an email address.", "email")
    return email


def email_skeleton(email: str) -> str:
    """Unicode TR 39's confusable skeleton, as disarm computes it: two emails with one skeleton
    look alike ('аnn@' in Cyrillic and 'ann@'; 'I', 'l' and '1'; full-width letters)."""
    return skeleton_key(email, digit_policy="tr39")


class Lookalikes:
    """The skeletons of the emails known so far, to refuse a new one that looks like one of them."""

    def __init__(self, emails: Iterable[str]) -> None:
        self._by_skeleton: dict[str, str] = {}
        for email in emails:
            self._by_skeleton.setdefault(email_skeleton(email), email)

    def add(self, email: str) -> None:
        """Refuse a new email (BAD_USER_INPUT) that looks like a known one; else know it too."""
        skeleton = email_skeleton(email)
        other = self._by_skeleton.get(skeleton)
        if other is not None and other != email:
            raise bad_input(f"The email {email!a} looks like the existing user {other!a}: refused.", "email")
        self._by_skeleton[skeleton] = email


async def known_emails() -> Lookalikes:
    """Every user's email, inside the creating transaction. On PostgreSQL the operator's commands
    that create users take turns (a lock only they take), so two at once cannot each let in a
    lookalike of the other's; SQLite has one writer at a time already."""
    from tortoise import connections

    if connections.get("default").capabilities.dialect == "postgres":
        await fetch("SELECT pg_advisory_xact_lock(hashtext('mandate.new-users')) AS locked")
    return Lookalikes(await User.all().values_list("email", flat=True))


def check_name(name: str) -> str:
    name = refuse_unstorable(name, "name").strip()
    if not name or len(name) > 200:
        raise bad_input("A name is 1 to 200 characters.", "name")
    return name


def check_password_fits(password: str, argument: str = "password") -> str:
    """What any password we store must be, whoever sets it: storable, and not over the maximum."""
    refuse_unstorable(password, argument)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise bad_input(f"A password is at most {MAX_PASSWORD_LENGTH} characters.", argument)
    return password


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list of the 30,000 passwords most found in leaks (lower case), as a set once.
    return frozenset(FREQUENCY_LISTS["passwords"])


def _folded(text: str) -> str:
    """Compared as people read it: compatibility forms (full-width letters) and case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def password_weakness(password: str, email: str | None = None) -> str | None:
    """The password rule (API.md "Passwords and sessions"): why this new password is refused, or
    None. At least MIN_PASSWORD_LENGTH code points, not the user's email whatever its case, not
    one of the commonly used passwords."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password is at least {MIN_PASSWORD_LENGTH} characters."
    folded = _folded(password)
    if email is not None and folded == _folded(email):
        return "A password may not be the email address."
    if folded in _common_passwords():
        return "That password is one of the most commonly used ones: choose another."
    return None


def check_new_password(password: str, email: str | None = None, argument: str = "password") -> str:
    """A new password, whole rule applied (BAD_USER_INPUT with the reason)."""
    check_password_fits(password, argument)
    if (weakness := password_weakness(password, email)) is not None:
        raise bad_input(weakness, argument)
    return password


async def users_by_id(user_ids: list[int]) -> list[User | None]:
    """The users of these ids, in their order (None for an id that names nobody): one statement."""
    users = {user.id: user for user in await User.filter(id__in=user_ids).select_related("totp_device")}
    return [users.get(user_id) for user_id in user_ids]
