"""The audit log as a manager reads it (`Account.auditEvents`)."""

from __future__ import annotations

from tests.support.api import Api, Result
from tests.support.documents import AUDIT


async def audit_page(api: Api, token: str, account_id: str, first: int = 50, after: str | None = None) -> Result:
    return await api.gql(AUDIT, {"id": account_id, "first": first, "after": after}, token=token)


async def audit_events(api: Api, token: str, account_id: str) -> list[dict]:
    """The whole log of an account (one page of 200), newest first."""
    r = await audit_page(api, token, account_id, first=200)
    assert not r.errors, r.body
    connection = r.data["account"]["auditEvents"]
    assert connection["pageInfo"]["hasNextPage"] is False
    return [edge["node"] for edge in connection["edges"]]


async def audit_actions(api: Api, token: str, account_id: str, subject: str) -> list[str]:
    """The actions of an account's log about one user, newest first (of its 200 latest)."""
    r = await audit_page(api, token, account_id, first=200)
    assert not r.errors, r.body
    events = [edge["node"] for edge in r.data["account"]["auditEvents"]["edges"]]
    return [e["action"] for e in events if (e["subject"] or {}).get("email") == subject]
