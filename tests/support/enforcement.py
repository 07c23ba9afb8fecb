"""Enforcement as managers switch it and users meet it."""

from __future__ import annotations

from tests.support.api import Api, Result
from tests.support.documents import ENFORCEMENT, SET_ENFORCEMENT


async def set_enforcement(api: Api, token: str, account_id: str, on: bool = True) -> Result:
    return await api.gql(SET_ENFORCEMENT, {"a": account_id, "on": on}, token=token)


async def enforce(api: Api, token: str, account_id: str, on: bool = True) -> dict:
    """Switches enforcement, which must succeed; the account as setEnforcement answers it."""
    r = await set_enforcement(api, token, account_id, on)
    assert not r.errors, r.body
    return r.data["setEnforcement"]


async def enforcement_of(api: Api, token: str, account_id: str) -> dict:
    r = await api.gql(f"query($id: ID!) {{ account(id: $id) {{ {ENFORCEMENT} }} }}", {"id": account_id},
                      token=token)
    assert not r.errors, r.body
    return r.data["account"]["twoFactorEnforcement"]


async def enforced_accounts(api: Api, token: str) -> set[str]:
    """The names of the enforced accounts in the caller's trees."""
    r = await api.gql(
        "{ accounts { name twoFactorEnforcement { enforced } "
        "descendants { name twoFactorEnforcement { enforced } } } }",
        token=token,
    )
    assert not r.errors, r.body
    return {
        account["name"]
        for top in r.data["accounts"]
        for account in [top, *top["descendants"]]
        if account["twoFactorEnforcement"]["enforced"]
    }


async def must_use_two_factor(api: Api, token: str) -> bool:
    r = await api.gql("{ me { twoFactorRequired } }", token=token)
    assert not r.errors, r.body
    return r.data["me"]["twoFactorRequired"]


GRACE = """
mutation($a: ID!, $on: Boolean!, $hours: Int) {
  setEnforcement(accountId: $a, enforced: $on, gracePeriodHours: $hours) {
    twoFactorEnforcement { enforced enforcedHere gracePeriodHours changedAt changedBy { email } }
  }
}"""


async def set_grace(api: Api, token: str, account_id: str, on: bool, hours: int | None) -> Result:
    """setEnforcement with a grace period (None: the argument sent as null)."""
    return await api.gql(GRACE, {"a": account_id, "on": on, "hours": hours}, token=token)


async def enforce_with_grace(api: Api, token: str, account_id: str, hours: int, on: bool = True) -> dict:
    """Switches enforcement with a grace period, which must succeed; the account's enforcement."""
    r = await set_grace(api, token, account_id, on, hours)
    assert not r.errors, r.body
    return r.data["setEnforcement"]["twoFactorEnforcement"]
