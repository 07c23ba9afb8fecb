"""Login, the second step of a login, logout, and `me`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry

from mandate.gql.permissions import MayLogIn, MayLogOut, MayVerifySecondFactor
from mandate.gql.sessions import LoginStatus
from mandate.gql.users import UserNode
from mandate.models import sessions, totp
from mandate.models.callers import Act, CallerKind


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
    def me(self, info: strawberry.Info) -> Optional[UserNode]:
        caller = info.context.caller
        if caller.kind is CallerKind.NOBODY:
            return None
        caller.require(Act.ME)
        return UserNode.of(caller.user)


@strawberry.type
class AuthMutations:
    @strawberry.mutation(permission_classes=[MayLogIn])
    async def login(self, info: strawberry.Info, email: str, password: str) -> LoginPayload:
        issued = await sessions.login(email, password, info.context.client_address, info.context.user_agent)
        info.context.become(issued)  # the payload's user is read as that session
        return LoginPayload.of(issued)

    @strawberry.mutation(
        permission_classes=[MayVerifySecondFactor], description="A TOTP or a recovery code."
    )
    async def verify_two_factor(self, info: strawberry.Info, code: str) -> LoginPayload:
        issued = await totp.verify_login(info.context.caller.session, code, info.context.client_address)
        info.context.become(issued)
        return LoginPayload.of(issued)

    @strawberry.mutation(permission_classes=[MayLogOut])
    async def logout(self, info: strawberry.Info) -> bool:
        await sessions.log_out(info.context.caller, info.context.client_address)
        info.context.caller_ended()
        return True
