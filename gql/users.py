"""The User type and Membership."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry

from mandate.gql.api_tokens import ApiTokenNode
from mandate.gql.ids import to_global_id
from mandate.gql.node import Node
from mandate.gql.permissions import ReadsUserField
from mandate.models.tables import Role as RoleModel
from mandate.models.tables import User
from mandate.models.totp import recovery_codes_remaining

if TYPE_CHECKING:
    from mandate.gql.accounts import AccountNode
    from mandate.gql.sessions import SessionNode

Role = strawberry.enum(RoleModel, name="Role")


@strawberry.type(name="Membership")
class MembershipNode:
    account: Annotated["AccountNode", strawberry.lazy("mandate.gql.accounts")]
    role: Role


@strawberry.type(name="User")
class UserNode(Node):
    """Every field asks the domain who may read it (models/callers.py, USER_FIELDS)."""

    id: strawberry.ID = strawberry.field(permission_classes=[ReadsUserField])
    email: str = strawberry.field(permission_classes=[ReadsUserField])
    name: str = strawberry.field(permission_classes=[ReadsUserField])
    pk: strawberry.Private[int]
    enabled: strawberry.Private[bool]
    # Reached through an account the caller manages (compliance, audit, reset): 2FA state shows.
    seen_by_manager: strawberry.Private[bool]

    @classmethod
    def of(cls, user: User, *, seen_by_manager: bool = False) -> UserNode:
        return cls(
            id=to_global_id("User", user.id),
            email=user.email,
            name=user.name,
            pk=user.id,
            enabled=user.two_factor_enabled,
            seen_by_manager=seen_by_manager,
        )

    @strawberry.field(permission_classes=[ReadsUserField])
    def two_factor_enabled(self) -> bool:
        return self.enabled

    @strawberry.field(
        permission_classes=[ReadsUserField],
        description="Some account the user can reach is enforced.",
    )
    async def two_factor_required(self, info: strawberry.Info) -> bool:
        return await info.context.bound_to_two_factor.load(self.pk)

    @strawberry.field(
        permission_classes=[ReadsUserField],
        description="While the user must use 2FA and has none: when their grace period ends (or ended); "
        "null for everyone else, and for a bound user not yet seen.",
    )
    async def two_factor_deadline(self, info: strawberry.Info) -> Optional[datetime]:
        caller = info.context.caller
        if self.pk == caller.user_id and caller.standing is not None:
            return caller.standing.deadline  # one's own: read with the caller, no second statement
        return await info.context.two_factor_deadlines.load(self.pk)

    @strawberry.field(permission_classes=[ReadsUserField])
    async def recovery_codes_remaining(self) -> int:
        return await recovery_codes_remaining(self.pk)

    @strawberry.field(
        permission_classes=[ReadsUserField],
        description="Every live session of the user, whatever its status, newest first.",
    )
    async def sessions(self, info: strawberry.Info) -> list[Annotated["SessionNode", strawberry.lazy("mandate.gql.sessions")]]:
        from mandate.gql.sessions import SessionNode

        # The guard let only the user themself this far: their sessions are the caller's.
        return [SessionNode.of(live) for live in await info.context.own_sessions.load(self.pk)]

    @strawberry.field(permission_classes=[ReadsUserField])
    async def memberships(self, info: strawberry.Info) -> list[MembershipNode]:
        from mandate.gql.accounts import AccountNode

        viewer = await info.context.viewer()
        views = await viewer.views(sorted(viewer.roles))
        return [
            MembershipNode(account=AccountNode.of(views[aid]), role=role)
            for aid, role in sorted(viewer.roles.items(), key=lambda item: (views[item[0]].row.name, item[0]))
            if aid in views
        ]

    @strawberry.field(
        permission_classes=[ReadsUserField], description="The user's live API tokens: neither revoked nor expired."
    )
    async def api_tokens(self, info: strawberry.Info) -> list[ApiTokenNode]:
        return [ApiTokenNode.of(api_token) for api_token in await info.context.own_api_tokens.load(self.pk)]
