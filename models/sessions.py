"""Logins and session tokens.

A token is random (256 bits), stored only as its SHA-256, and has a kind: password-only (may
verify a second factor), enrolment-only (may enrol) or full. Password-only and enrolment-only
tokens live MANDATE_PARTIAL_TOKEN_MINUTES; full sessions MANDATE_SESSION_HOURS from login
(absolute, not sliding: a stolen token dies on schedule).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from tortoise.transactions import in_transaction

from mandate.config import get_settings
from mandate.models import clock, throttle
from mandate.models.crypto import digest, new_token, verify_password
from mandate.models.errors import INVALID_CREDENTIALS, MandateError, bad_input
from mandate.models.sql import fetch
from mandate.models.tables import Session, SessionKind, User
from mandate.models.users import MAX_PASSWORD_LENGTH, normalise_email


class Access(Enum):
    """What a request may do, from its token and the user's state now."""

    ANONYMOUS = "anonymous"
    PASSWORD_ONLY = "password_only"
    ENROLMENT_ONLY = "enrolment_only"
    FULL = "full"


class LoginStatus(Enum):
    AUTHENTICATED = "AUTHENTICATED"
    TWO_FACTOR_REQUIRED = "TWO_FACTOR_REQUIRED"
    ENROLMENT_REQUIRED = "ENROLMENT_REQUIRED"


_STATUS_OF_KIND = {
    SessionKind.FULL: LoginStatus.AUTHENTICATED,
    SessionKind.PASSWORD: LoginStatus.TWO_FACTOR_REQUIRED,
    SessionKind.ENROLMENT: LoginStatus.ENROLMENT_REQUIRED,
}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    session: Session
    user: User

    @property
    def status(self) -> LoginStatus:
        return _STATUS_OF_KIND[self.session.kind]

    @property
    def expires_at(self) -> datetime:
        return self.session.expires_at


def _lifetime(kind: SessionKind) -> timedelta:
    s = get_settings()
    if kind is SessionKind.FULL:
        return timedelta(hours=s.session_hours)
    return timedelta(minutes=s.partial_token_minutes)


async def issue(
    user: User, kind: SessionKind, *, two_factor_passed: bool, client_address: str | None
) -> IssuedToken:
    token = new_token()
    now = clock.now()
    session = await Session.create(
        token_hash=digest(token),
        user_id=user.id,
        kind=kind,
        two_factor_passed=two_factor_passed,
        created_at=now,
        expires_at=now + _lifetime(kind),
        client_address=client_address,
    )
    return IssuedToken(token, session, user)


async def authenticate(token: str) -> Session | None:
    """The live session behind a bearer token, with its user, in one statement."""
    if not token or len(token) > 200:
        return None
    session = await Session.filter(token_hash=digest(token)).select_related("user__totp_device").first()
    if session is None or session.revoked_at is not None or session.expires_at <= clock.now():
        return None
    return session


@dataclass(frozen=True, slots=True)
class Glance:
    """All a cached answer can depend on besides the request: the caller's live session (None
    without one) and the data version (see migration 0002), read together in one statement."""

    data_version: int
    session_id: int | None
    user_id: int | None
    kind: str | None
    two_factor_passed: bool | None

    @property
    def caller(self) -> tuple | None:
        """Who is asking, as far as an answer can differ: the session as it stands now."""
        return None if self.session_id is None else (self.session_id, self.kind, self.two_factor_passed)


_GLANCE = (
    "SELECT v.version, s.id, s.user_id, s.kind, s.two_factor_passed FROM mandate_data_version v"
    " LEFT JOIN sessions s ON s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?"
    " WHERE v.id = 1"
)


async def glance(token: str | None) -> Glance:
    token_hash = digest(token) if token and len(token) <= 200 else None
    row = (await fetch(_GLANCE, (token_hash, clock.now())))[0]
    passed = row["two_factor_passed"]
    return Glance(row["version"], row["id"], row["user_id"], row["kind"], None if passed is None else bool(passed))


async def access_of(session: Session | None) -> Access:
    """Enrolment is required of a user bound to 2FA without it, from their very next request."""
    from mandate.models.enforcement import must_use_two_factor  # enforcement imports sessions

    if session is None:
        return Access.ANONYMOUS
    if session.kind is SessionKind.PASSWORD:
        return Access.PASSWORD_ONLY
    if session.kind is SessionKind.ENROLMENT:
        return Access.ENROLMENT_ONLY
    if not session.user.two_factor_enabled and await must_use_two_factor(session.user.id):
        return Access.ENROLMENT_ONLY
    return Access.FULL


async def revoke(session: Session) -> None:
    await Session.filter(id=session.id, revoked_at=None).update(revoked_at=clock.now())


async def end_all(user_id: int, *, except_session_id: int | None = None) -> None:
    query = Session.filter(user_id=user_id, revoked_at=None)
    if except_session_id is not None:
        query = query.exclude(id=except_session_id)
    await query.update(revoked_at=clock.now())


async def login(email: str, password: str, client_address: str | None) -> IssuedToken:
    from mandate.models.enforcement import must_use_two_factor

    email = normalise_email(email)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise bad_input("That password is too long.", "password")
    # One person's keys are claimed before the password is checked, so that parallel guesses
    # cannot outrun them; the address, which everyone behind it shares, is only looked at.
    address = throttle.address_key(client_address) if client_address else None
    if address is not None:
        await throttle.check_standing(address, throttle.PASSWORD_PER_ADDRESS)
    limits = [
        (throttle.email_and_address_key(email, client_address), throttle.PASSWORD_PER_EMAIL_AND_ADDRESS),
        (throttle.email_key(email), throttle.PASSWORD_PER_EMAIL),
    ]
    async with throttle.counted_attempt(*limits) as attempt:
        user = await User.filter(email=email).select_related("totp_device").first()
        # argon2 in a thread: it releases the GIL, and the event loop keeps serving meanwhile.
        if not await asyncio.to_thread(verify_password, user.password_hash if user else None, password):
            more = []
            if address is not None:
                failures = await throttle.record_failure(address, throttle.PASSWORD_PER_ADDRESS)
                more.append((throttle.PASSWORD_PER_ADDRESS, failures))
            raise attempt.refused(MandateError(INVALID_CREDENTIALS), *more)
    assert user is not None

    if user.two_factor_enabled:
        kind = SessionKind.PASSWORD
    elif await must_use_two_factor(user.id):
        kind = SessionKind.ENROLMENT
    else:
        kind = SessionKind.FULL
    return await issue(user, kind, two_factor_passed=False, client_address=client_address)


async def upgrade_after_second_factor(session: Session, client_address: str | None) -> IssuedToken:
    """A password-only session passed its second factor: a new full token replaces it."""
    async with in_transaction():
        await revoke(session)
        return await issue(
            session.user, SessionKind.FULL, two_factor_passed=True, client_address=client_address
        )
