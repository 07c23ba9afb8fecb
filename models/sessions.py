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

from tortoise.transactions import in_transaction

from mandate.config import get_settings
from mandate.models import api_tokens, clock, grace, throttle
from mandate.models.callers import RIGHTS, Act, Caller, LoginStatus, kind_of_session
from mandate.models.crypto import digest, new_token, verify_password
from mandate.models.errors import INVALID_CREDENTIALS, NOT_FOUND, UNAUTHENTICATED, MandateError, bad_input
from mandate.models.tables import USER_AGENT_LENGTH, Session, SessionKind, User
from mandate.models.text import made_storable
from mandate.models.users import MAX_PASSWORD_LENGTH, normalise_email


@dataclass(frozen=True)
class IssuedToken:
    token: str
    session: Session
    user: User

    @property
    def caller(self) -> Caller:
        """Who the new token makes its bearer, without asking the database again: whether its user
        must enrol was decided when its kind was chosen."""
        must_enrol = self.session.kind is SessionKind.ENROLMENT
        kind = kind_of_session(self.session.kind, self.session.two_factor_passed, self.user.two_factor_enabled, must_enrol)
        return Caller(kind, self.session, self.user)

    @property
    def status(self) -> LoginStatus:
        return RIGHTS[self.caller.kind].status

    @property
    def expires_at(self) -> datetime:
        return self.session.expires_at


def _lifetime(kind: SessionKind) -> timedelta:
    s = get_settings()
    if kind is SessionKind.FULL:
        return timedelta(hours=s.session_hours)
    return timedelta(minutes=s.partial_token_minutes)


async def issue(
    user: User, kind: SessionKind, *, two_factor_passed: bool, client_address: str | None,
    user_agent: str | None = None,
) -> IssuedToken:
    """A new session. `user_agent`: the login's User-Agent, kept as a note (cut, made storable)."""
    token = new_token()
    now = clock.now()
    session = await Session.create(
        token_hash=digest(token),
        user=user,  # the session carries its user (and their device): the new token is the caller next
        kind=kind,
        two_factor_passed=two_factor_passed,
        created_at=now,
        expires_at=now + _lifetime(kind),
        client_address=client_address,
        user_agent=made_storable(user_agent, USER_AGENT_LENGTH) if user_agent else None,
    )
    return IssuedToken(token, session, user)


async def revoke(session: Session) -> bool:
    """Ends the session; False if it had ended already (of two requests ending it, one does)."""
    return await Session.filter(id=session.id, revoked_at=None).update(revoked_at=clock.now()) > 0


async def log_out(caller: Caller, client_address: str | None) -> None:
    """End the caller's own credential: its session, or the API token it is (audited as any
    revocation of a token)."""
    caller.require(Act.LOG_OUT)
    if caller.api_token is not None:
        await api_tokens.revoke(caller, caller.api_token.id, client_address)
    else:
        await revoke(caller.session)


async def end_all(user_id: int, *, except_session_id: int | None = None) -> None:
    query = Session.filter(user_id=user_id, revoked_at=None)
    if except_session_id is not None:
        query = query.exclude(id=except_session_id)
    await query.update(revoked_at=clock.now())


async def password_checked(
    email: str, password: str, client_address: str | None, argument: str = "password"
) -> User:
    """The user whose email and password these are (with their device), else INVALID_CREDENTIALS:
    the one check of a password, under the login throttles, for `login` and `changePassword`."""
    email = normalise_email(email)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise bad_input("That password is too long.", argument)
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
    return user


async def login(email: str, password: str, client_address: str | None, user_agent: str | None = None) -> IssuedToken:
    user = await password_checked(email, password, client_address)
    kind = await _kind_after_password(user)
    async with in_transaction():
        # The password checked is still theirs, and stays so until the session exists: a change
        # committing meanwhile (which ends every other session) leaves this login none to open.
        # FOR UPDATE: on PostgreSQL the read waits for a change under way, then sees it.
        if not await User.filter(id=user.id, password_hash=user.password_hash).select_for_update().only("id").first():
            raise MandateError(INVALID_CREDENTIALS)
        return await issue(user, kind, two_factor_passed=False, client_address=client_address, user_agent=user_agent)


async def _kind_after_password(user: User) -> SessionKind:
    if user.two_factor_enabled:
        return SessionKind.PASSWORD
    now = clock.now()
    if (await grace.login_standing(user.id, now)).must_enrol(now):
        return SessionKind.ENROLMENT  # rule 2: bound without 2FA, and out of grace (or given none)
    return SessionKind.FULL


async def upgrade_after_second_factor(session: Session, client_address: str | None) -> IssuedToken:
    """A password-only session passed its second factor: a new full token replaces it (the
    second step of the same login: its User-Agent carries over)."""
    async with in_transaction():
        if not await revoke(session):  # ended meanwhile (a reset, a password change, its other step)
            raise MandateError(UNAUTHENTICATED, "This session has ended.")
        return await issue(
            session.user, SessionKind.FULL, two_factor_passed=True, client_address=client_address,
            user_agent=session.user_agent,
        )


@dataclass(frozen=True)
class LiveSession:
    """One of a user's live sessions, as they see it in their list."""

    session: Session
    status: LoginStatus  # what it may do as a caller: RIGHTS' status of its kind
    current: bool        # the session of the request that lists it


async def live_sessions(caller: Caller) -> list[LiveSession]:
    """Every live session of the caller's user, whatever its kind, newest first: one statement.
    Only a caller who may READ lists them (USER_FIELDS), and such a caller is not held to
    enrolment (callers.resolve), so neither is any full session of theirs."""
    rows = await Session.live(clock.now(), user_id=caller.user_id).order_by("-created_at", "-id")
    two_factor_on = caller.user.two_factor_enabled
    current = caller.session.id if caller.session is not None else None
    return [
        LiveSession(row, RIGHTS[kind_of_session(row.kind, row.two_factor_passed, two_factor_on, False)].status,
                    row.id == current)
        for row in rows
    ]


async def revoke_own_session(caller: Caller, session_id: int) -> bool:
    """End one live session of the caller's own, the current one included; NOT_FOUND for any
    other (another user's, unknown, already ended): one conditional statement. True when it was
    the current one: the caller has ended."""
    caller.require(Act.END_OWN_SESSIONS)
    now = clock.now()
    if not await Session.live(now, id=session_id, user_id=caller.user_id).update(revoked_at=now):
        raise MandateError(NOT_FOUND)
    return caller.session is not None and caller.session.id == session_id
