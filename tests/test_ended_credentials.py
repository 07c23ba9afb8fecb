"""What ends a session or a token ends what it could still do: later in the same document, and in
a request that read it just before it ended (a disable, a reset, another step of the same login).

The Clinic (tests/support/worlds.py) is the `clinic` fixture: its manager is not bound to 2FA, so
they may disable theirs.
"""

from __future__ import annotations

import asyncio

import pytest

from mandate.models import callers, sessions
from mandate.models.crypto import digest
from mandate.models.tables import ApiToken, Session
from tests.support.api import PASSWORD, Api, error_code
from tests.support.codes import totp_now
from tests.support.holding import held_after
from tests.support.people import enrolled, password_only, signed_in
from tests.support.worlds import MANAGER, MEMBER

CHANGE_PASSWORD = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
CREATE = 'mutation { createApiToken(name: "script", scopes: [MANAGE]) { token } }'


@pytest.fixture
async def manager(api, clinic, clock):
    return await enrolled(api, MANAGER, clock)


# --- Later in the same document -------------------------------------------------------------------


@pytest.mark.parametrize("ending", [
    'disableTotp(code: "{code}") {{ twoFactorEnabled }}',
    "logout",
])
async def test_no_token_is_made_after_the_session_ended_in_the_same_document(api, manager, ending):
    document = f"mutation {{ {ending.format(code=totp_now(manager.secret))} {CREATE[len('mutation { '):-2]} }}"
    r = await api.gql(document, token=manager.token)
    assert error_code(r, "UNAUTHENTICATED"), r.body
    assert r.data is None or r.data.get("createApiToken") is None
    assert await ApiToken.all().count() == 0


async def test_enforcement_is_not_switched_after_2fa_was_disabled_in_the_same_document(api, manager, clinic):
    document = (
        'mutation($c: String!, $a: ID!) { disableTotp(code: $c) { twoFactorEnabled }'
        ' setEnforcement(accountId: $a, enforced: true) { twoFactorEnforcement { enforced } } }'
    )
    r = await api.gql(document, {"c": totp_now(manager.secret), "a": clinic}, token=manager.token)
    assert error_code(r, "UNAUTHENTICATED"), r.body
    assert r.data is None or r.data.get("setEnforcement") is None
    again = await enrolled(api, MANAGER)
    r = await api.gql("query($a: ID!) { account(id: $a) { twoFactorEnforcement { enforced } } }", {"a": clinic},
                      token=again.token)
    assert r.data["account"]["twoFactorEnforcement"]["enforced"] is False


# --- Ended by another request meanwhile ------------------------------------------------------------


async def test_a_token_is_not_made_from_a_session_a_disable_ended_meanwhile(api, manager, clock, monkeypatch):
    held, resume = held_after(monkeypatch, callers, "resolve")
    creating = asyncio.create_task(api.gql(CREATE, token=manager.token))
    await held.wait()
    other = await enrolled_session(api, manager, clock)
    clock.advance(30)
    r = await api.gql('mutation($c: String!) { disableTotp(code: $c) { email } }',
                      {"c": totp_now(manager.secret)}, token=other)
    assert not r.errors, r.body
    resume.set()
    assert error_code(await creating, "UNAUTHENTICATED")
    assert await ApiToken.all().count() == 0


async def test_one_login_passes_its_second_step_once_whatever_races(api, clinic, clock, monkeypatch):
    """A second step held after reading its password-only session, while another second step of
    the same login (a recovery code) passes: the held one opens no second full session."""
    member = await enrolled(api, MEMBER, clock)
    token = await password_only(api, MEMBER)
    held, resume = held_after(monkeypatch, callers, "resolve")
    verifying = asyncio.create_task(api.verify(token, totp_now(member.secret)))
    await held.wait()
    assert not (await api.verify(token, member.recovery_codes[0])).errors
    resume.set()
    assert error_code(await verifying, "UNAUTHENTICATED")
    # The enrolment's session and the recovery code's: no third.
    assert await Session.filter(user__email=MEMBER, revoked_at=None).count() == 2


async def enrolled_session(api: Api, manager, clock) -> str:
    """Another session of the manager's that passed the second factor, on a fresh step."""
    return await api.full_login(MANAGER, manager.secret, clock)


async def test_a_login_whose_password_changed_meanwhile_opens_no_session(api, clinic, monkeypatch):
    """A login held after its password check, while the user changes their password from another
    session: the old password opens nothing once the change has ended the other sessions."""
    other = await signed_in(api, MEMBER)
    held, resume = held_after(monkeypatch, sessions, "password_checked")
    logging_in = asyncio.create_task(api.login(MEMBER))
    await held.wait()
    r = await api.gql(CHANGE_PASSWORD, {"c": PASSWORD, "n": "a-fresh-passphrase-91"}, token=other)
    assert not r.errors, r.body
    resume.set()
    assert error_code(await logging_in, "INVALID_CREDENTIALS")
    assert [s.id for s in await Session.filter(user__email=MEMBER, revoked_at=None)] == [await session_id(other)]


async def session_id(token: str) -> int:
    return (await Session.get(token_hash=digest(token))).id
