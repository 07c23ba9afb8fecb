"""Login, the second step of a login, logout, and `me`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry

from mandate.gql.permissions import HasSession, IsPasswordOnlySession
from mandate.gql.users import UserNode
from mandate.models import sessions, totp
from mandate.models.errors import TWO_FACTOR_REQUIRED, MandateError
from mandate.models.sessions import Access

LoginStatus = strawberry.enum(
    sessions.LoginStatus,
    name="LoginStatus",
    description="What the token of a login may do.",
)


@strawberry.type
class LoginPayload:
    status: LoginStatus
    token: str
    expires_at: datetime
    user: UserNode

    @classmethod
    def of(cls, issued: sessions.IssuedToken) -> LoginPayload:
        return cls(
            status=issued.status,
            token=issued.token,
            expires_at=issued.expires_at,
            user=UserNode.of(issued.user),
        )


@strawberry.type
class AuthQueries:
    @strawberry.field(description="The caller; null without a token.")
    async def me(self, info: strawberry.Info) -> Optional[UserNode]:
        session = await info.context.session()
        if session is None:
            return None
        if await info.context.access() is Access.PASSWORD_ONLY:
            raise MandateError(TWO_FACTOR_REQUIRED)
        return UserNode.of(session.user)


@strawberry.type
class AuthMutations:
    @strawberry.mutation
    async def login(self, info: strawberry.Info, email: str, password: str) -> LoginPayload:
        issued = await sessions.login(email, password, info.context.client_address)
        info.context.forget_session(issued.token)  # the payload's user is read as that session
        return LoginPayload.of(issued)

    @strawberry.mutation(
        permission_classes=[IsPasswordOnlySession], description="A TOTP or a recovery code."
    )
    async def verify_two_factor(self, info: strawberry.Info, code: str) -> LoginPayload:
        session = await info.context.require_session()
        issued = await totp.verify_login(session, code, info.context.client_address)
        info.context.forget_session(issued.token)
        return LoginPayload.of(issued)

    @strawberry.mutation(permission_classes=[HasSession])
    async def logout(self, info: strawberry.Info) -> bool:
        await sessions.revoke(await info.context.require_session())
        return True
