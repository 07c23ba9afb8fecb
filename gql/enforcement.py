"""Switching enforcement, compliance, and a manager's reset of a member's 2FA."""

from __future__ import annotations

import strawberry

from gql.accounts import AccountNode, reachable_account
from gql.ids import pk_of, to_global_id
from gql.permissions import HasOwnTwoFactor, IsFullSession, ManagesAccount
from gql.users import UserNode
from models import enforcement


@strawberry.type(name="Compliance")
class ComplianceNode:
    total_users: int = strawberry.field(
        description="Users this account's enforcement binds: a role on it, an ancestor or a "
        "descendant, and the site members of its subtree's sites."
    )
    enrolled_users: int = strawberry.field(description="Of them, with 2FA set up.")
    pending_users: list[UserNode] = strawberry.field(description="Of them, still to set it up.")

    @classmethod
    async def of(cls, account_id: int) -> ComplianceNode:
        users = await enforcement.bound_users(account_id)
        pending = [u for u in users if not u.enrolled]
        return cls(
            total_users=len(users),
            enrolled_users=len(users) - len(pending),
            pending_users=[
                UserNode(id=to_global_id("User", u.id), email=u.email, name=u.name, pk=u.id, enabled=False, seen_by_manager=True)
                for u in pending
            ],
        )


@strawberry.type
class EnforcementMutations:
    @strawberry.mutation(permission_classes=[IsFullSession, ManagesAccount, HasOwnTwoFactor])
    async def set_enforcement(
        self, info: strawberry.Info, account_id: strawberry.ID, enforced: bool
    ) -> AccountNode:
        pk = pk_of(account_id, "Account", "accountId")
        session = await info.context.require_session()
        await enforcement.set_enforcement(pk, enforced, session.user, info.context.client_address)
        return AccountNode.of(await reachable_account(info, pk))

    @strawberry.mutation(permission_classes=[IsFullSession, ManagesAccount, HasOwnTwoFactor])
    async def reset_member_two_factor(
        self, info: strawberry.Info, account_id: strawberry.ID, user_id: strawberry.ID
    ) -> UserNode:
        account_pk = pk_of(account_id, "Account", "accountId")
        user_pk = pk_of(user_id, "User", "userId")
        user = await enforcement.reset_member_two_factor(
            await info.context.viewer(), account_pk, user_pk, info.context.client_address
        )
        return UserNode.of(user, seen_by_manager=True)
