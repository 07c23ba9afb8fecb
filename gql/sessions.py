"""A user's sessions (`User.sessions`, `revokeSession`), what a session may do (`LoginStatus`,
which `login` answers too), and changing one's password."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry

from mandate.gql.ids import pk_of, to_global_id
from mandate.gql.permissions import MayChangePassword, MayEndOwnSessions
from mandate.models import callers, credentials, sessions

LoginStatus = strawberry.enum(
    callers.LoginStatus,
    name="LoginStatus",
    description="What the token of a login may do.",
)


@strawberry.type(name="Session")
class SessionNode:
    id: strawberry.ID
    created_at: datetime
    expires_at: datetime
    client_address: Optional[str]
    user_agent: Optional[str] = strawberry.field(description="the User-Agent of the login that opened it")
    status: LoginStatus = strawberry.field(description="what it may do, as `login` would have said")
    current: bool = strawberry.field(description="the session of this request")

    @classmethod
    def of(cls, live: sessions.LiveSession) -> SessionNode:
        session = live.session
        return cls(
            id=to_global_id("Session", session.id),
            created_at=session.created_at,
            expires_at=session.expires_at,
            client_address=session.client_address,
            user_agent=session.user_agent,
            status=live.status,
            current=live.current,
        )


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        permission_classes=[MayChangePassword],
        description="Ends every other session of the user; this one stays.",
    )
    async def change_password(self, info: strawberry.Info, current_password: str, new_password: str) -> bool:
        await credentials.change_password(
            info.context.caller, current_password, new_password, info.context.client_address
        )
        return True

    @strawberry.mutation(
        permission_classes=[MayEndOwnSessions], description="Ends one of the caller's own sessions, this one included."
    )
    async def revoke_session(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        if await sessions.revoke_own_session(info.context.caller, pk_of(id, "Session", "id")):
            info.context.caller_ended()
        return True
