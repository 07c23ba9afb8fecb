"""TOTP devices and recovery codes: enrolling, verifying, consuming, disabling; the second
factor's throttle.

A user's device (tables.TotpDevice) carries its rule whole, as django-otp's `verify_token()`:
the code is parsed, the throttle checked and the attempt claimed, the code checked against the
window and the last used step, the step consumed by one conditional UPDATE of the device row (so
two racing requests cannot both win), and the count reset or left standing.

A pending enrolment lives on the session that started it (sessions.totp_pending_secret): only
that session can confirm it, and it ends with the session. The device is made by the
confirmation. Changing device is the same enrolment, started by a code of the current device
(`start_replacement`): while it is pending 2FA stays on with the current device, and its
confirmation (the same `confirm_enrolment`) gives the user's one device row the new secret.

RFC 6238 with SHA-1, 6 digits, 30 s steps. pyotp computes the codes; Mandate decides which step
matched, so that a step at or before the last one used is refused.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

import pyotp
import segno
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from mandate.models import api_tokens, audit, clock, sessions, throttle
from mandate.models.binding import must_use_two_factor
from mandate.models.crypto import UnreadableSecret, constant_time_equal, decrypt_secret, digest, encrypt_secret
from mandate.models.errors import (
    FORBIDDEN,
    INTERNAL_SERVER_ERROR,
    INVALID_CODE,
    TWO_FACTOR_ENFORCED,
    TWO_FACTOR_SETUP_REQUIRED,
    UNAUTHENTICATED,
    MandateError,
    bad_input,
)
from mandate.models.tables import RecoveryCode, Session, SessionKind, TotpDevice, User

log_incident = logging.getLogger("mandate.totp")

T = TypeVar("T")

ISSUER = "Mandate"
STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20            # 160 bits, RFC 4226's recommendation
RECOVERY_CODE_COUNT = 10
LOCK_AFTER_FAILURES = 100    # then TOTP stays locked until a recovery code or a reset

# A user's second factor, across their sessions, mutations and server processes: one count for
# TOTP and recovery codes, before and after enrolment (confirmTotp has no device yet). A TOTP
# code is refused for good after 100 failures; a recovery code still passes, after the delay.
TOTP_CODES = throttle.Policy(
    free_failures=4, forget_after=None, lock_after=LOCK_AFTER_FAILURES,
    locked_message="Too many failed codes: this factor is locked. Use a recovery code, or ask a manager to reset it.",
)
RECOVERY_CODES = throttle.Policy(free_failures=4, forget_after=None)


def second_factor_key(user_id: int) -> str:
    return f"factor:{user_id}"

_TOTP_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_CODE = re.compile(r"[a-z2-7]{5}(?:-[a-z2-7]{5}){3}", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Code:
    value: str
    is_recovery: bool


def parse_code(code: str, *, allow_recovery: bool = True) -> Code:
    """Six ASCII digits, or a recovery code; anything else is refused before any check."""
    if _TOTP_CODE.fullmatch(code):
        return Code(code, is_recovery=False)
    if allow_recovery and _RECOVERY_CODE.fullmatch(code):
        return Code(code.lower(), is_recovery=True)
    expected = "six digits or a recovery code" if allow_recovery else "six digits"
    raise bad_input(f"A code is {expected}.", "code")


def current_step(at: float | None = None) -> int:
    return int((clock.time() if at is None else at) // STEP_SECONDS)


def matching_step(secret: str, code: str, *, digits: int = DIGITS, at: float | None = None) -> int | None:
    """The latest step within one either side of `at` (default: now) whose code this is.

    `digits` and `at` exist for RFC 6238's test vectors (8 digits, fixed times); the API
    always checks 6 digits against the clock."""
    totp = pyotp.TOTP(secret, digits=digits)
    now = current_step(at)
    matched = None
    for step in (now - 1, now, now + 1):  # compare all three: no early exit to time
        if constant_time_equal(totp.generate_otp(step), code):
            matched = step
    return matched


async def consume_step(device: TotpDevice, step: int) -> bool:
    """Record the step as the device's last used, unless it or a later one was used already, or
    the device took another secret since it was read (a code of the device it replaced): one
    conditional UPDATE of the device row, so of racing requests one wins.

    (A count over 0, not == 1: SQLite's count adds the data-version row its trigger updates.)"""
    return await TotpDevice.filter(id=device.id, secret=device.secret, last_step__lt=step).update(last_step=step) > 0


async def device_accepts(device: TotpDevice, code: str) -> bool:
    """The code is one of the device's window and later than its last used step, now used."""
    step = matching_step(decrypt_secret(device.secret), code)
    return step is not None and await consume_step(device, step)


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(20))  # 100 bits
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


async def _consume_recovery_code(user: User, code: str) -> bool:
    return (
        await RecoveryCode.filter(user_id=user.id, code_hash=digest(code), used_at=None).update(
            used_at=clock.now()
        )
        > 0  # as in consume_step
    )


async def _replace_recovery_codes(user_id: int) -> list[str]:
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    await RecoveryCode.filter(user_id=user_id).delete()
    await RecoveryCode.bulk_create(
        [RecoveryCode(user_id=user_id, code_hash=digest(code)) for code in codes]
    )
    return codes


async def recovery_codes_remaining(user_id: int) -> int:
    return await RecoveryCode.filter(user_id=user_id, used_at=None).count()


class _WrongCode(Exception):
    """The code was checked and refused: leaves the attempt's transaction with nothing written."""


async def _attempt(
    user: User,
    code: Code,
    accepts: Callable[[], Awaitable[bool]],
    effect: Callable[[], Awaitable[T]],
    client_address: str | None,
) -> T:
    """One second-factor attempt under the user's throttle, all or nothing.

    The attempt is claimed before the code is checked (throttle.counted_attempt, committed on
    its own), so parallel attempts cannot outrun the delay. Then the check with the consumption
    of the step or recovery code (`accepts`), the `effect`, the reset of the count and the audit
    of a success are one transaction: an attempt that ends in an error rolls all of it back and
    gives its claim back, so it spends nothing. A wrong code keeps its claim and is audited.
    """
    policy = RECOVERY_CODES if code.is_recovery else TOTP_CODES

    async def log(action: str) -> None:
        await audit.record(action, actor_id=user.id, subject_id=user.id, client_address=client_address)

    checking = False
    try:
        async with throttle.counted_attempt((second_factor_key(user.id), policy)) as attempt:
            checking = True
            try:
                async with in_transaction():
                    if not await accepts():
                        raise _WrongCode
                    result = await effect()
                    await attempt.succeed()
                    if code.is_recovery:
                        await log(audit.RECOVERY_CODE_USED)
            except _WrongCode:
                refusal = attempt.refused(MandateError(INVALID_CODE))
                # Counted from here even if its audit line cannot be written: never a free guess.
                await log(audit.SECOND_FACTOR_FAILED)
                raise refusal from None
    except MandateError:
        if not checking:  # refused unlooked-at: the delay runs, or TOTP is locked
            await log(audit.SECOND_FACTOR_THROTTLED)
        raise
    except UnreadableSecret:
        # Nothing was guessed: the claim was given back, so a key misconfiguration never burns
        # a user's free attempts or locks their factor; tell the operators, not the caller.
        log_incident.error(
            "the TOTP secret of user %s decrypts under none of MANDATE_SECRET_KEY's keys: put the "
            "old key back (after the new one) and run `mandate rotate-key` before dropping it", user.id
        )
        raise MandateError(
            INTERNAL_SERVER_ERROR, "Codes cannot be checked at the moment: the operators have been told."
        ) from None
    return result


async def verify_second_factor(
    user: User, raw_code: str, client_address: str | None, effect: Callable[[], Awaitable[T]]
) -> T:
    """Check a TOTP or recovery code of a user whose 2FA is on (loaded with their device) and,
    in the same transaction, do what it allows (`effect`); raises on failure, having done nothing."""
    code = parse_code(raw_code)
    if not user.two_factor_enabled:
        raise MandateError(TWO_FACTOR_SETUP_REQUIRED)
    device = user.totp_device
    if code.is_recovery:
        accepts = lambda: _consume_recovery_code(user, code.value)  # noqa: E731
    else:
        accepts = lambda: device_accepts(device, code.value)  # noqa: E731
    return await _attempt(user, code, accepts, effect, client_address)


async def remove_two_factor(user_id: int) -> None:
    """Everything a user's 2FA is made of goes: the device, the recovery codes, any session's
    pending enrolment, every session (API.md rule 7), every API token and the failure count. In the caller's
    transaction, beside the caller's audit event (the caller knows the action)."""
    await TotpDevice.filter(user_id=user_id).delete()
    await RecoveryCode.filter(user_id=user_id).delete()
    await _drop_pending_enrolments(user_id)
    await sessions.end_all(user_id)
    await api_tokens.revoke_all(user_id)
    await throttle.reset(second_factor_key(user_id))


async def with_device(user_id: int) -> User:
    """The user as they stand now, with their device (for `User.two_factor_enabled`)."""
    return await User.filter(id=user_id).select_related("totp_device").get()


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_code_svg: str


async def start_enrolment(session: Session, client_address: str | None) -> Enrolment:
    """A fresh secret, pending on this session only until it confirms it; restarting replaces
    this session's, never another's."""
    user = session.user
    if user.two_factor_enabled:
        raise MandateError(
            FORBIDDEN, "Two-factor authentication is already on: to change device, call replaceTotp with a code."
        )
    secret = _new_secret()
    async with in_transaction():
        await _pend(session, secret, audit.TOTP_ENROLMENT_STARTED, client_address)
        # A confirmation that committed since this request began: the secret must not stay
        # pending beside a device, where confirmTotp would take it for a replacement with no code.
        if await TotpDevice.exists(user_id=user.id):
            raise MandateError(FORBIDDEN, "Two-factor authentication is already on.")
    return _enrolment(user, secret)


async def start_replacement(session: Session, raw_code: str, client_address: str | None) -> Enrolment:
    """A new device's enrolment, pending on this session, proved by a code of the current device
    or a recovery code (a second-factor attempt, throttled; a wrong one leaves nothing pending).
    2FA stays on with the current device until `confirm_enrolment` swaps them."""
    user = session.user
    parse_code(raw_code)
    if not user.two_factor_enabled:
        raise MandateError(FORBIDDEN, "Two-factor authentication is not on: call enrolTotp to set it up.")
    secret = _new_secret()
    await verify_second_factor(
        user, raw_code, client_address,
        lambda: _pend(session, secret, audit.TOTP_REPLACEMENT_STARTED, client_address),
    )
    return _enrolment(user, secret)


def _new_secret() -> str:
    return pyotp.random_base32(length=32)  # 32 base32 characters: 160 bits


async def _pend(session: Session, secret: str, action: str, client_address: str | None) -> None:
    """The secret pending on this session (replacing this session's own, never another's); in the
    caller's transaction, beside its audit event."""
    if not await Session.filter(id=session.id, revoked_at=None).update(totp_pending_secret=encrypt_secret(secret)):
        raise MandateError(UNAUTHENTICATED, "This session has ended.")
    user_id = session.user.id
    await audit.record(action, actor_id=user_id, subject_id=user_id, client_address=client_address)


def _enrolment(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri, qr_code_svg(uri))


def qr_code_svg(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, title="TOTP enrolment")
    return buffer.getvalue().decode()


async def _drop_pending_enrolments(user_id: int) -> None:
    """No session of the user keeps a pending secret once 2FA is switched on or off."""
    await Session.filter(user_id=user_id, totp_pending_secret__isnull=False).update(totp_pending_secret=None)


@dataclass(frozen=True)
class Confirmation:
    recovery_codes: list[str]
    user: User
    new_token: sessions.IssuedToken | None


async def confirm_enrolment(session: Session, raw_code: str, client_address: str | None) -> Confirmation:
    """2FA is on from here, with this session's pending device: recovery codes are issued and every
    other session ends. For a user whose 2FA is on already (the enrolment was `start_replacement`'s)
    the new device replaces the old one: the same transition, audited as TOTP_REPLACED.

    One transition, whoever races it: the device is inserted (one per user, its last used step the
    one this code matched) or, on a replacement, its row updated first, and the calling session's
    enrolment is taken by a conditional UPDATE (the session still live, its secret still this
    one), in the attempt's transaction; a confirmation that loses either rolls back whole, its
    attempt included."""
    user = session.user
    code = parse_code(raw_code, allow_recovery=False)
    pending = session.totp_pending_secret
    replacing = user.two_factor_enabled
    if replacing and pending is None:
        raise MandateError(
            FORBIDDEN, "Two-factor authentication is already on: to change device, call replaceTotp first."
        )
    if pending is None:
        raise MandateError(FORBIDDEN, "No enrolment is under way in this session: call enrolTotp first.")

    step: int | None = None

    async def accepts() -> bool:
        nonlocal step
        step = matching_step(decrypt_secret(pending), code.value)
        if step is None:
            return False
        # The last used step is the user's, across devices: on a replacement the new device's code
        # spends its step on the user's one device row, as any code does (a step at or before the
        # last one accepted, from either device, is refused).
        return not replacing or await consume_step(user.totp_device, step)

    async def switch_on() -> tuple[list[str], sessions.IssuedToken | None]:
        if replacing:
            await _replace_device(user.totp_device, pending)
        else:
            try:  # the device's user is unique: of racing confirmations one inserts it
                await TotpDevice.create(user_id=user.id, secret=pending, last_step=step, confirmed_at=clock.now())
            except IntegrityError:
                raise MandateError(FORBIDDEN, "Two-factor authentication is already on.") from None
        if not await Session.filter(id=session.id, revoked_at=None, totp_pending_secret=pending).update(
            totp_pending_secret=None
        ):
            if not await Session.filter(id=session.id, revoked_at=None).exists():
                raise MandateError(UNAUTHENTICATED, "This session has ended.")
            raise MandateError(FORBIDDEN, "This session restarted its enrolment: confirm the new secret.")
        await _drop_pending_enrolments(user.id)
        codes = await _replace_recovery_codes(user.id)
        if session.kind is SessionKind.FULL:
            await sessions.end_all(user.id, except_session_id=session.id)
            await Session.filter(id=session.id).update(two_factor_passed=True)
            new_token = None
        else:  # an enrolment-only token is spent: a full one replaces it
            await sessions.end_all(user.id)
            new_token = await sessions.issue(
                user, SessionKind.FULL, two_factor_passed=True, client_address=client_address,
                user_agent=session.user_agent,  # the same login, now enrolled
            )
        await audit.record(
            audit.TOTP_REPLACED if replacing else audit.TOTP_CONFIRMED,
            actor_id=user.id, subject_id=user.id, client_address=client_address,
        )
        return codes, new_token

    codes, new_token = await _attempt(user, code, accepts, switch_on, client_address)
    return Confirmation(codes, await with_device(user.id), new_token)


async def _replace_device(device: TotpDevice, secret: str) -> None:
    """The user's one device row takes the new secret (its last used step, the user's, was spent by
    the new code), unless it took another one since it was read."""
    if not await TotpDevice.filter(id=device.id, secret=device.secret).update(secret=secret, confirmed_at=clock.now()):
        raise MandateError(FORBIDDEN, "Two-factor authentication changed meanwhile.")


async def disable(session: Session, raw_code: str, client_address: str | None) -> User:
    """Remove one's own 2FA (not while it is enforced); every session ends."""
    user = session.user
    parse_code(raw_code)
    if not user.two_factor_enabled:
        raise MandateError(TWO_FACTOR_SETUP_REQUIRED, "Two-factor authentication is not on.")
    if await must_use_two_factor(user.id):
        raise MandateError(TWO_FACTOR_ENFORCED)

    async def switch_off() -> None:
        await remove_two_factor(user.id)
        await audit.record(
            audit.TOTP_DISABLED, actor_id=user.id, subject_id=user.id, client_address=client_address
        )

    await verify_second_factor(user, raw_code, client_address, switch_off)
    return await with_device(user.id)


async def regenerate_recovery_codes(session: Session, raw_code: str, client_address: str | None) -> list[str]:
    user = session.user

    async def replace() -> list[str]:
        codes = await _replace_recovery_codes(user.id)
        await audit.record(
            audit.RECOVERY_CODES_REGENERATED, actor_id=user.id, subject_id=user.id, client_address=client_address
        )
        return codes

    return await verify_second_factor(user, raw_code, client_address, replace)


async def verify_login(session: Session, raw_code: str, client_address: str | None) -> sessions.IssuedToken:
    """The second step of a login: a password-only session becomes a full one."""
    return await verify_second_factor(
        session.user, raw_code, client_address,
        lambda: sessions.upgrade_after_second_factor(session, client_address),
    )
