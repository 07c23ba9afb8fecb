"""API tokens as a user creates, lists and revokes them."""

from __future__ import annotations

from tests.support.api import Api, Result

CREATE = """
mutation($name: String!, $scopes: [ApiTokenScope!]!, $days: Int) {
  createApiToken(name: $name, scopes: $scopes, expiresInDays: $days) {
    token apiToken { id name scopes createdAt expiresAt lastUsedAt }
  }
}"""
CREATE_DEFAULT = """
mutation($name: String!, $scopes: [ApiTokenScope!]!) {
  createApiToken(name: $name, scopes: $scopes) { token apiToken { id createdAt expiresAt } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"
LIST = "{ me { apiTokens { id name scopes createdAt expiresAt lastUsedAt } } }"


async def create_api_token(
    api: Api, token: str, scopes: list[str], name: str = "script", days: int | None = 30
) -> Result:
    return await api.gql(CREATE, {"name": name, "scopes": scopes, "days": days}, token=token)


async def api_token(api: Api, session: str, scopes: list[str], name: str = "script") -> tuple[str, str]:
    """A new token of the session's user: (the token, its id)."""
    r = await create_api_token(api, session, scopes, name)
    assert not r.errors, r.body
    created = r.data["createApiToken"]
    return created["token"], created["apiToken"]["id"]


async def live_tokens(api: Api, token: str) -> list[dict]:
    r = await api.gql(LIST, token=token)
    assert not r.errors, r.body
    return r.data["me"]["apiTokens"]


async def revoke_api_token(api: Api, token: str, token_id: str) -> Result:
    return await api.gql(REVOKE, {"id": token_id}, token=token)
