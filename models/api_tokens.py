"""API tokens for automation scripts: issuing, listing, revoking, and ending them all.

A token is `mandate_pat_` and 256 random bits (the prefix lets secret scanners recognise a leaked
one), shown once at its creation and stored only as its SHA-256. It acts as its owner, with the
owner's rights as they stand at each request, within its scopes (models/callers.py: RIGHTS,
`resolve`). Every token of a user ends with what ends trust in their login: their 2FA removed
(models/totp.py `remove_two_factor`), a new password or a disabled account
(models/credentials.py): `revoke_all`, called from those two places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from mandate.models import audit, clock
from mandate.models.callers import Act, Caller
from mandate.models.crypto import digest, new_api_token
from mandate.models.errors import NOT_FOUND, UNAUTHENTICATED, MandateError, bad_input
from mandate.models.tables import ApiToken, ApiTokenScope, Session
from mandate.models.users import check_name

MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 365, 30


@dataclass(frozen=True)
class IssuedApiToken:
    token: str  # the only time it is seen: never stored, logged or shown again
    api_token: ApiToken


def _checked_scopes(scopes: list[ApiTokenScope]) -> str:
    """The scopes as given, in order; none, or one twice, is refused (kept as given means no
    silent change either)."""
    if not scopes:
        raise bad_input("Give at least one scope.", "scopes")
    if len(set(scopes)) != len(scopes):
        raise bad_input("Give each scope once.", "scopes")
    return " ".join(ApiTokenScope(scope).value for scope in scopes)


async def create(
    caller: Caller, name: str, scopes: list[ApiTokenScope], expires_in_days: int | None, client_address: str | None
) -> IssuedApiToken:
    """A new token of the caller's, from a session that passed its second factor only."""
    caller.require(Act.CREATE_API_TOKEN)
    name = check_name(name)
    stored_scopes = _checked_scopes(scopes)
    if expires_in_days is None or not MIN_DAYS <= expires_in_days <= MAX_DAYS:
        raise bad_input(f"expiresInDays is {MIN_DAYS} to {MAX_DAYS}.", "expiresInDays")
    token = new_api_token()
    now = clock.now()
    async with in_transaction():
        # Not from a session that has ended (a disable, a reset or a password change racing this,
        # or earlier in the same document): the token would outlive what ended it.
        if not await _held_live(caller.session):
            raise MandateError(UNAUTHENTICATED, "This session has ended.")
        api_token = await ApiToken.create(
            user_id=caller.user_id, name=name, token_hash=digest(token), scopes=stored_scopes,
            created_at=now, expires_at=now + timedelta(days=expires_in_days),
        )
        await audit.record(
            audit.API_TOKEN_CREATED, actor_id=caller.user_id, subject_id=caller.user_id, client_address=client_address
        )
    return IssuedApiToken(token, api_token)


async def _held_live(session: Session) -> bool:
    """Whether the session is live, and stays so until this transaction ends: a conditional UPDATE
    of its row, which on PostgreSQL waits for a transaction that is ending it and then finds it
    ended (SQLite has one writer at a time)."""
    now = clock.now()
    return await Session.live(now, id=session.id).update(revoked_at=None) > 0


async def revoke(caller: Caller, token_id: int, client_address: str | None) -> bool:
    """End one live token of the caller's (the calling token itself included): one conditional
    UPDATE, so a token that is another user's, unknown, expired or revoked already is NOT_FOUND.
    True when it was the calling token: the caller has ended."""
    caller.require(Act.REVOKE_API_TOKEN)
    now = clock.now()
    async with in_transaction():
        if not await ApiToken.live(now, id=token_id, user_id=caller.user_id).update(revoked_at=now):
            raise MandateError(NOT_FOUND, "You have no such live API token.")
        await audit.record(
            audit.API_TOKEN_REVOKED, actor_id=caller.user_id, subject_id=caller.user_id, client_address=client_address
        )
    return caller.api_token is not None and caller.api_token.id == token_id


async def revoke_all(user_id: int) -> None:
    """Every token of the user ends now. In the caller's transaction, beside the caller's own
    audit event (the reason: 2FA removed, a password set, the user disabled)."""
    await ApiToken.filter(user_id=user_id, revoked_at=None).update(revoked_at=clock.now())


async def live(user_id: int) -> list[ApiToken]:
    """The user's tokens neither revoked nor expired, oldest first: one statement."""
    return await ApiToken.live(clock.now(), user_id=user_id).order_by("id")
