"""Passwords changing hands: the user's own change, the operator's, and what a new password ends.

`end_what_a_password_change_ends` is the one function every path that sets or removes a password
calls (the user's `changePassword`, the operator's import and commands), so none of them can
forget a kind of credential.
"""

from __future__ import annotations

import asyncio

from tortoise.transactions import in_transaction

from mandate.models import api_tokens, audit, clock, sessions
from mandate.models.callers import Act, Caller
from mandate.models.crypto import hash_password
from mandate.models.errors import INVALID_CREDENTIALS, MandateError
from mandate.models.tables import Session, User
from mandate.models.users import check_new_password


async def end_what_a_password_change_ends(user_id: int, *, except_session_id: int | None = None) -> int:
    """End every session of the user (but the one that made the change, when given) and every API
    token of theirs; returns how many sessions were live."""
    live = Session.live(clock.now(), user_id=user_id)
    if except_session_id is not None:
        live = live.exclude(id=except_session_id)
    ended = await live.count()
    await sessions.end_all(user_id, except_session_id=except_session_id)
    await api_tokens.revoke_all(user_id)
    return ended


async def change_password(caller: Caller, current_password: str, new_password: str, client_address: str | None) -> None:
    """The caller's own password: the current one is checked first, as a login's (the same
    throttles: wrong, it is INVALID_CREDENTIALS and counts as a failed login); then the new one
    must pass the password rule (BAD_USER_INPUT). Every other session of the user ends, this one
    stays; audited as PASSWORD_CHANGED."""
    caller.require(Act.CHANGE_PASSWORD)
    user = caller.user
    checked = await sessions.password_checked(user.email, current_password, client_address, "currentPassword")
    check_new_password(new_password, user.email, "newPassword")
    new_hash = await asyncio.to_thread(hash_password, new_password)  # argon2 releases the GIL
    async with in_transaction():
        # Against the hash just checked: of two changes at once, the second finds it gone.
        if not await User.filter(id=user.id, password_hash=checked.password_hash).update(password_hash=new_hash):
            raise MandateError(INVALID_CREDENTIALS)
        await end_what_a_password_change_ends(user.id, except_session_id=caller.session.id)
        await audit.record(audit.PASSWORD_CHANGED, actor_id=user.id, subject_id=user.id, client_address=client_address)


async def set_password_by_operator(user_id: int, password_hash: str) -> int:
    """The operator gives a user a password (the same one again counts too: the file says it is
    new): every session of theirs ends, audited with no actor. Call it inside the operator's
    transaction; returns how many live sessions ended."""
    await User.filter(id=user_id).update(password_hash=password_hash)
    ended = await end_what_a_password_change_ends(user_id)
    await audit.record(audit.PASSWORD_SET_BY_OPERATOR, subject_id=user_id)
    return ended
