"""API tokens for automation scripts: creating and revoking them (User.apiTokens lists them)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry

from mandate.gql.ids import pk_of, to_global_id
from mandate.gql.permissions import MayCreateApiToken, MayRevokeApiToken
from mandate.models import api_tokens
from mandate.models.callers import scopes_of
from mandate.models.tables import ApiToken
from mandate.models.tables import ApiTokenScope as ApiTokenScopeModel

ApiTokenScope = strawberry.enum(
    ApiTokenScopeModel, name="ApiTokenScope",
    description="READ: every query the owner may make. MANAGE: READ, and setEnforcement and resetMemberTwoFactor.",
)


@strawberry.type(name="ApiToken")
class ApiTokenNode:
    id: strawberry.ID
    name: str
    scopes: list[ApiTokenScope]
    created_at: datetime
    expires_at: datetime
    last_used_at: Optional[datetime]

    @classmethod
    def of(cls, api_token: ApiToken) -> ApiTokenNode:
        return cls(
            id=to_global_id("ApiToken", api_token.id), name=api_token.name, scopes=scopes_of(api_token),
            created_at=api_token.created_at, expires_at=api_token.expires_at, last_used_at=api_token.last_used_at,
        )


@strawberry.type
class ApiTokenCreation:
    token: str = strawberry.field(description="shown once, never again")
    api_token: ApiTokenNode


@strawberry.type
class ApiTokenMutations:
    @strawberry.mutation(
        permission_classes=[MayCreateApiToken],
        description=f"From a session that passed its second factor; expiresInDays is {api_tokens.MIN_DAYS} to "
        f"{api_tokens.MAX_DAYS}; scopes are kept as given (each once).",
    )
    async def create_api_token(
        self, info: strawberry.Info, name: str, scopes: list[ApiTokenScope],
        expires_in_days: Optional[int] = api_tokens.DEFAULT_DAYS,
    ) -> ApiTokenCreation:
        issued = await api_tokens.create(
            info.context.caller, name, scopes, expires_in_days, info.context.client_address
        )
        return ApiTokenCreation(token=issued.token, api_token=ApiTokenNode.of(issued.api_token))

    @strawberry.mutation(
        permission_classes=[MayRevokeApiToken], description="One of the caller's live tokens, the calling one included."
    )
    async def revoke_api_token(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        if await api_tokens.revoke(info.context.caller, pk_of(id, "ApiToken", "id"), info.context.client_address):
            info.context.caller_ended()
        return True
