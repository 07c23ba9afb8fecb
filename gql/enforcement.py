"""Switching enforcement, compliance, and a manager's reset of a member's 2FA."""

from __future__ import annotations

import asyncio
from typing import Annotated, Optional

import strawberry

from mandate.gql.accounts import AccountNode
from mandate.gql.ids import pk_of, to_global_id
from mandate.gql.permissions import MayRead
from mandate.gql.users import UserNode
from mandate.models import enforcement
from mandate.models.errors import bad_input
from mandate.models.grace import MAX_GRACE_PERIOD_HOURS


MAX_PENDING_PAGE = 1000


@strawberry.type(name="Compliance")
class ComplianceNode:
    account_id: strawberry.Private[int]
    _counts: strawberry.Private[asyncio.Future | None] = None

    def _counted(self) -> asyncio.Future:
        """Both counts come from one aggregate, asked at most once per Compliance."""
        if self._counts is None:
            self._counts = asyncio.ensure_future(enforcement.compliance_counts(self.account_id))
        return self._counts

    @strawberry.field(
        description="Users this account's enforcement binds: a role on it, an ancestor or a "
        "descendant, and the site members of its subtree's sites."
    )
    async def total_users(self) -> int:
        return (await self._counted()).total

    @strawberry.field(description="Of them, with 2FA set up.")
    async def enrolled_users(self) -> int:
        return (await self._counted()).enrolled

    @strawberry.field(
        description="Of them, still to set it up, by email. All of them without `first`; with it, "
        f"a page of at most `first` (0 to {MAX_PENDING_PAGE}) after the user whose id is `after`."
    )
    async def pending_users(
        self, first: Optional[int] = None, after: Optional[strawberry.ID] = None
    ) -> list[UserNode]:
        if first is not None and not 0 <= first <= MAX_PENDING_PAGE:
            raise bad_input(f"first is 0 to {MAX_PENDING_PAGE}.", "first")
        after_pk = pk_of(after, "User", "after") if after is not None else None
        users = await enforcement.pending_users(self.account_id, first, after_pk)
        return [
            UserNode(id=to_global_id("User", u.id), email=u.email, name=u.name, pk=u.id, enabled=False,
                     seen_by_manager=True)
            for u in users
        ]


@strawberry.type
class EnforcementMutations:
    # (MayRead answers a caller who may not use the API before its arguments are looked at; the
    # domain's operation checks the whole of rule 1 itself.)
    @strawberry.mutation(permission_classes=[MayRead])
    async def set_enforcement(
        self, info: strawberry.Info, account_id: strawberry.ID, enforced: bool,
        grace_period_hours: Annotated[Optional[int], strawberry.argument(
            description=f"Hours (0 to {MAX_GRACE_PERIOD_HOURS:,}) a user this switch binds may go on "
            "without 2FA from their first login or request while bound; 0 (or null): enrol at the next login."
        )] = 0,
    ) -> AccountNode:
        context = info.context
        view = await enforcement.set_enforcement(
            context.caller, await context.viewer(), pk_of(account_id, "Account", "accountId"), enforced,
            context.client_address, grace_period_hours or 0,
        )
        return AccountNode.of(view)

    @strawberry.mutation(permission_classes=[MayRead])
    async def reset_member_two_factor(
        self, info: strawberry.Info, account_id: strawberry.ID, user_id: strawberry.ID
    ) -> UserNode:
        context = info.context
        user = await enforcement.reset_member_two_factor(
            context.caller, await context.viewer(), pk_of(account_id, "Account", "accountId"),
            pk_of(user_id, "User", "userId"), context.client_address,
        )
        return UserNode.of(user, seen_by_manager=True)
