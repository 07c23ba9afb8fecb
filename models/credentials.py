"""What a new password ends: whoever sets it, the sessions opened under the old one, and every API token.

One function for every path that sets or removes a password (the operator's import and
commands now; the user's own change hooks in here too), so none of them can
forget a kind of credential.
"""

from __future__ import annotations

from mandate.models import api_tokens, audit, clock, sessions
from mandate.models.tables import Session, User


async def end_what_a_password_change_ends(user_id: int, *, except_session_id: int | None = None) -> int:
    """End every session of the user (but the one that made the change, when given) and every API
    token of theirs; returns how many sessions were live."""
    live = Session.filter(user_id=user_id, revoked_at=None, expires_at__gt=clock.now())
    if except_session_id is not None:
        live = live.exclude(id=except_session_id)
    ended = await live.count()
    await sessions.end_all(user_id, except_session_id=except_session_id)
    await api_tokens.revoke_all(user_id)
    return ended


async def set_password_by_operator(user_id: int, password_hash: str) -> int:
    """The operator gives a user a password (the same one again counts too: the file says it is
    new): every session of theirs ends, audited with no actor. Call it inside the operator's
    transaction; returns how many live sessions ended."""
    await User.filter(id=user_id).update(password_hash=password_hash)
    ended = await end_what_a_password_change_ends(user_id)
    await audit.record(audit.PASSWORD_SET_BY_OPERATOR, subject_id=user_id)
    return ended
