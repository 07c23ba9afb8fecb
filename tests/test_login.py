"""Logins and sessions: what `login` answers, what each kind of token may do (API.md rule 2 and
LoginStatus), expiry and logout.

The Clinic (tests/support/worlds.py) is the `clinic` fixture of conftest.py.
"""

from __future__ import annotations

import os

import pytest

from tests.support.api import Api, Result, error_code, timestamp
from tests.support.codes import totp_now
from tests.support.documents import (
    ACCOUNTS,
    CONFIRM,
    DISABLE,
    ENROL,
    LOGOUT,
    ME,
    REGENERATE,
    SET_ENFORCEMENT,
    VERIFY,
)
from tests.support.people import own_id, password_only as password_only_token, signed_in
from tests.support.worlds import CLINIC, MANAGER, MEMBER, enforcing_manager


# --- What login answers ---------------------------------------------------------------------


async def test_login_of_a_user_without_two_factor_and_not_bound_is_authenticated(api, clinic):
    r = await api.login(MEMBER)
    assert not r.errors, r.body
    assert r.data["login"]["status"] == "AUTHENTICATED"
    assert r.data["login"]["user"]["email"] == MEMBER
    read = await api.gql(ACCOUNTS, token=r.data["login"]["token"])
    assert read.data == {"accounts": [{"id": clinic, "name": CLINIC}]}


async def test_login_of_a_user_with_two_factor_requires_the_second_factor(api, clinic):
    await api.enrol(await signed_in(api, MEMBER))
    assert (await api.login_token(MEMBER))[0] == "TWO_FACTOR_REQUIRED"


async def test_login_of_a_user_bound_by_enforcement_without_two_factor_requires_enrolment(api, clinic):
    await enforcing_manager(api, clinic)
    assert (await api.login_token(MEMBER))[0] == "ENROLMENT_REQUIRED"


async def test_wrong_password_and_unknown_email_get_the_same_answer(api, clinic):
    wrong_password = await api.login(MEMBER, "not-the-password")
    unknown_email = await api.login("nobody@example.org")
    for r in (wrong_password, unknown_email):
        assert error_code(r, "INVALID_CREDENTIALS"), r.body
    assert wrong_password.errors[0]["message"] == unknown_email.errors[0]["message"]
    assert wrong_password.errors[0]["extensions"] == unknown_email.errors[0]["extensions"]


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.org", "spaced out@example.org", ""])
async def test_malformed_email_is_bad_user_input(api, clinic, email):
    assert error_code(await api.login(email), "BAD_USER_INPUT")


async def test_tokens_are_opaque_with_at_least_43_random_characters(api, clinic):
    tokens = [(await api.login_token(MEMBER))[1] for _ in range(5)]
    # Whatever fixed prefix a token has, what follows differs between logins and is long.
    prefix = os.path.commonprefix(tokens)
    assert all(len(token) - len(prefix) >= 43 for token in tokens), tokens
    assert len(set(tokens)) == 5
    for token in tokens:
        assert MEMBER not in token and token.count(".") < 2, token  # no email inside, not a JWT


async def test_partial_tokens_expire_within_minutes(api, clinic, clock):
    await enforcing_manager(api, clinic)  # the manager now has 2FA; the member must enrol
    for email, status in ((MANAGER, "TWO_FACTOR_REQUIRED"), (MEMBER, "ENROLMENT_REQUIRED")):
        login = (await api.login(email)).data["login"]
        assert login["status"] == status
        assert 60 <= timestamp(login["expiresAt"]) - clock.time() <= 3600, login


async def test_full_sessions_expire_within_hours(api, clinic, clock):
    secret = (await api.enrol(await signed_in(api, MANAGER))).secret
    clock.advance(30)
    _, password_only = await api.login_token(MANAGER)
    verified = (await api.verify(password_only, totp_now(secret))).data["verifyTwoFactor"]
    direct = (await api.login(MEMBER)).data["login"]
    for login in (verified, direct):
        assert login["status"] == "AUTHENTICATED"
        assert 3600 <= timestamp(login["expiresAt"]) - clock.time() <= 48 * 3600, login


async def test_a_session_works_until_it_expires_then_is_unauthenticated(api, clinic, clock):
    login = (await api.login(MEMBER)).data["login"]
    clock.advance(timestamp(login["expiresAt"]) - clock.time() - 60)
    assert (await api.gql(ME, token=login["token"])).data["me"]["email"] == MEMBER
    clock.advance(120)
    assert error_code(await api.gql(ME, token=login["token"]), "UNAUTHENTICATED")


async def test_an_expired_password_only_token_cannot_verify(api, clinic, clock):
    secret = (await api.enrol(await signed_in(api, MEMBER))).secret
    login = (await api.login(MEMBER)).data["login"]
    clock.advance(timestamp(login["expiresAt"]) - clock.time() + 60)
    assert error_code(await api.verify(login["token"], totp_now(secret)), "UNAUTHENTICATED")


async def test_logout_revokes_the_token(api, clinic):
    token = await signed_in(api, MEMBER)
    assert (await api.gql(LOGOUT, token=token)).data == {"logout": True}
    assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")
    assert error_code(await api.gql(ACCOUNTS, token=token), "UNAUTHENTICATED")


@pytest.mark.parametrize("token", ["garbage", "mdt_" + "A" * 43, "x" * 5000, "Bearer"])
async def test_an_unknown_token_is_unauthenticated(api, clinic, token):
    await signed_in(api, MEMBER)  # a live session exists: an unknown token must not find it
    assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")


async def test_me_is_null_without_a_token(api, clinic):
    r = await api.gql(ME)
    assert r.errors == [] and r.data == {"me": None}


async def test_accounts_without_a_token_is_unauthenticated(api, clinic):
    assert error_code(await api.gql(ACCOUNTS), "UNAUTHENTICATED")


# --- What each kind of token may do (rule 2, LoginStatus) -----------------------------------

# Documents a limited token must not run; $account and $user are filled in with the Clinic's id
# and the caller's own id.
OWN_TOTP_CODE = "123456"
LIMITED = {
    "me.memberships": ("{ me { memberships { role account { name } } } }", {}),
    "me.recoveryCodesRemaining": ("{ me { recoveryCodesRemaining } }", {}),
    "accounts": (ACCOUNTS, {}),
    "account": ("query($a: ID!) { account(id: $a) { id name } }", {"a": "$account"}),
    "node": ("query($a: ID!) { node(id: $a) { id } }", {"a": "$account"}),
    "setEnforcement": (SET_ENFORCEMENT, {"a": "$account", "on": False}),
    "resetMemberTwoFactor": (
        "mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { id } }",
        {"a": "$account", "u": "$user"},
    ),
    "disableTotp": (DISABLE, {"c": OWN_TOTP_CODE}),
    "regenerateRecoveryCodes": (REGENERATE, {"c": OWN_TOTP_CODE}),
}
REFUSED_TO_PASSWORD_ONLY = {
    **LIMITED,
    "me": ("{ me { id email } }", {}),
    "enrolTotp": (ENROL, {}),
    "confirmTotp": (CONFIRM, {"c": OWN_TOTP_CODE}),
}
REFUSED_TO_ENROLMENT_ONLY = {**LIMITED, "verifyTwoFactor": (VERIFY, {"c": OWN_TOTP_CODE})}


async def run_refused(api: Api, token: str, clinic_id: str, user_id: str, name: str, table: dict) -> Result:
    query, variables = table[name]
    filled = {k: {"$account": clinic_id, "$user": user_id}.get(v, v) for k, v in variables.items()}
    return await api.gql(query, filled, token=token)


@pytest.fixture
async def password_only(api, clinic) -> tuple[str, str]:
    """A password-only token of the Clinic's manager, who has 2FA (so every refusal below is the
    token's doing), and the manager's id."""
    full = (await api.enrol(await signed_in(api, MANAGER))).token
    manager_id = await own_id(api, full)
    return await password_only_token(api, MANAGER), manager_id


@pytest.mark.parametrize("name", sorted(REFUSED_TO_PASSWORD_ONLY))
async def test_password_only_token_is_refused_everything_but_verifying(api, clinic, password_only, name):
    token, manager_id = password_only
    r = await run_refused(api, token, clinic, manager_id, name, REFUSED_TO_PASSWORD_ONLY)
    assert error_code(r, "TWO_FACTOR_REQUIRED"), r.body


async def test_password_only_token_may_log_out(api, clinic, password_only):
    token, _ = password_only
    assert (await api.gql(LOGOUT, token=token)).data == {"logout": True}
    assert error_code(await api.verify(token, OWN_TOTP_CODE), "UNAUTHENTICATED")


@pytest.fixture
async def enrolment_only(api, clinic) -> tuple[str, str]:
    """An enrolment-only token of the member, bound by the Clinic's enforcement, and their id."""
    member_id = await own_id(api, await signed_in(api, MEMBER))
    await enforcing_manager(api, clinic)
    status, token = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    return token, member_id


async def test_enrolment_only_token_reads_its_own_scalars(api, clinic, enrolment_only):
    token, member_id = enrolment_only
    r = await api.gql(ME, token=token)
    assert r.errors == [], r.body
    assert r.data["me"] == {
        "id": member_id, "email": MEMBER, "name": "Member", "twoFactorEnabled": False, "twoFactorRequired": True,
    }


@pytest.mark.parametrize("name", sorted(REFUSED_TO_ENROLMENT_ONLY))
async def test_enrolment_only_token_is_refused_everything_but_enrolling(api, clinic, enrolment_only, name):
    token, member_id = enrolment_only
    r = await run_refused(api, token, clinic, member_id, name, REFUSED_TO_ENROLMENT_ONLY)
    assert error_code(r, "ENROLMENT_REQUIRED"), r.body


async def test_enrolment_only_token_may_enrol(api, clinic, enrolment_only):
    token, _ = enrolment_only
    r = await api.gql(ENROL, token=token)
    assert r.errors == [] and r.data["enrolTotp"]["secret"], r.body


async def test_enrolment_only_token_may_log_out(api, clinic, enrolment_only):
    token, _ = enrolment_only
    assert (await api.gql(LOGOUT, token=token)).data == {"logout": True}
    assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")


@pytest.fixture
async def held_session(api, clinic) -> tuple[str, str]:
    """A full session the member held before the Clinic's enforcement bound them, and their id."""
    token = await signed_in(api, MEMBER)
    member_id = await own_id(api, token)
    assert not (await api.gql(ACCOUNTS, token=token)).errors
    await enforcing_manager(api, clinic)
    return token, member_id


@pytest.mark.parametrize("name", sorted(REFUSED_TO_ENROLMENT_ONLY))
async def test_held_full_session_is_limited_once_enforcement_binds_its_user(api, clinic, held_session, name):
    token, member_id = held_session
    r = await run_refused(api, token, clinic, member_id, name, REFUSED_TO_ENROLMENT_ONLY)
    assert error_code(r, "ENROLMENT_REQUIRED"), r.body


async def test_held_full_session_still_reads_its_own_scalars_once_bound(api, clinic, held_session):
    token, _ = held_session
    r = await api.gql(ME, token=token)
    assert r.errors == [] and r.data["me"]["twoFactorRequired"] is True, r.body


async def test_held_full_session_regains_full_access_once_enrolled(api, clinic, held_session):
    token, _ = held_session
    usable = (await api.enrol(token)).token
    r = await api.gql(ACCOUNTS, token=usable)
    assert r.errors == [] and r.data == {"accounts": [{"id": clinic, "name": CLINIC}]}, r.body
