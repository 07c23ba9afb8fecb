"""Users brought to a state through the API: signed in, enrolled, half-way through a login."""

from __future__ import annotations

from tests.support.api import Api, Login, Result
from tests.support.clock import Clock
from tests.support.documents import CONFIRM, ENROL


async def signed_in(api: Api, email: str) -> str:
    """A full session of a user without 2FA who is not bound to it."""
    status, token = await api.login_token(email)
    assert status == "AUTHENTICATED", f"{email}: {status}"
    return token


async def enrolled(api: Api, email: str, clock: Clock | None = None) -> Login:
    """Enrols the user from a fresh login (a full session, or an enrolment-only one where 2FA
    binds them): a session that passed the second factor, the secret, the recovery codes. Given
    the clock, moves it on a minute so that the codes of the steps around now are all unused."""
    status, token = await api.login_token(email)
    assert status in ("AUTHENTICATED", "ENROLMENT_REQUIRED"), f"{email}: {status}"
    login = await api.enrol(token)
    if clock is not None:
        clock.advance(60)
    return login


async def with_two_factor(api: Api, email: str) -> str:
    """`enrolled`'s session alone."""
    return (await enrolled(api, email)).token


async def password_only(api: Api, email: str) -> str:
    """A token of a user with 2FA that has passed the password only."""
    status, token = await api.login_token(email)
    assert status == "TWO_FACTOR_REQUIRED", status
    return token


async def verify_after_login(api: Api, code: str, email: str) -> Result:
    """A fresh login's second step (a password-only token outlives no long wait)."""
    return await api.verify(await password_only(api, email), code)


async def own_id(api: Api, token: str) -> str:
    r = await api.gql("{ me { id } }", token=token)
    assert not r.errors, r.body
    return r.data["me"]["id"]


async def start_enrolment(api: Api, token: str) -> str:
    """Starts enrolment in this session; the pending secret."""
    r = await api.gql(ENROL, token=token)
    assert not r.errors, r.body
    return r.data["enrolTotp"]["secret"]


async def confirm(api: Api, token: str, code: str) -> Result:
    return await api.gql(CONFIRM, {"c": code}, token=token)
