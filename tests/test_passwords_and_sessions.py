"""Passwords and sessions (API.md "Passwords and sessions"): `changePassword`, the password rule,
what a new password ends, `User.sessions` and `revokeSession`.

The Clinic (tests/support/worlds.py) is the `clinic` fixture; its member signs in with PASSWORD.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import httpx
import pytest

from mandate.models.tables import AuditEvent
from tests.support.api import CLIENT_ADDRESS, PASSWORD, Api, answered, app_client, error_code
from tests.support.documents import ME
from tests.support.enforcement import enforce
from tests.support.people import enrolled, password_only, signed_in
from tests.support.throttling import waited
from tests.support.worlds import LONER, MANAGER, MEMBER, enforcing_manager

CHANGE = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
SESSIONS = "{ me { sessions { id createdAt expiresAt clientAddress userAgent status current } } }"
REVOKE = "mutation($id: ID!) { revokeSession(id: $id) }"
NEW_PASSWORD = "zq8-Lw3r-new"


async def change(api: Api, token: str, new: str = NEW_PASSWORD, current: str = PASSWORD):
    return await api.gql(CHANGE, {"c": current, "n": new}, token=token)


async def sessions_of(api: Api, token: str) -> list[dict]:
    r = await api.gql(SESSIONS, token=token)
    assert not r.errors, r.body
    return r.data["me"]["sessions"]


async def alive(api: Api, token: str) -> bool:
    return await answered(api, token, ME, "UNAUTHENTICATED")


def session_id(pk: int) -> str:
    return base64.b64encode(f"Session:{pk}".encode()).decode()


# --- changePassword -------------------------------------------------------------------------


async def test_a_changed_password_lets_the_new_one_in_and_not_the_old(api, clinic):
    token = await signed_in(api, MEMBER)
    assert (await change(api, token)).body == {"data": {"changePassword": True}}
    assert (await api.login_token(MEMBER, NEW_PASSWORD))[0] == "AUTHENTICATED"
    assert error_code(await api.login(MEMBER, PASSWORD), "INVALID_CREDENTIALS")


async def test_changing_the_password_ends_every_other_session_and_keeps_this_one(api, clinic):
    token, other, another = [await signed_in(api, MEMBER) for _ in range(3)]
    manager = await signed_in(api, MANAGER)
    assert not (await change(api, token)).errors
    assert await alive(api, token)
    assert not await alive(api, other) and not await alive(api, another)
    assert [s["current"] for s in await sessions_of(api, token)] == [True]
    assert await alive(api, manager)  # another user's sessions are theirs


async def test_a_session_that_passed_two_factor_changes_the_password_and_keeps_its_second_factor(api, clinic, clock):
    login = await enrolled(api, MEMBER, clock)
    pending = await password_only(api, MEMBER)
    assert not (await change(api, login.token)).errors
    assert not await alive(api, pending)
    assert [s["status"] for s in await sessions_of(api, login.token)] == ["AUTHENTICATED"]
    # The next login takes the new password and still asks for the second factor.
    assert (await api.login_token(MEMBER, NEW_PASSWORD))[0] == "TWO_FACTOR_REQUIRED"


async def test_a_wrong_current_password_is_invalid_credentials_and_changes_nothing(api, clinic):
    token, other = await signed_in(api, MEMBER), await signed_in(api, MEMBER)
    assert error_code(await change(api, token, current="not-the-password"), "INVALID_CREDENTIALS")
    assert await alive(api, other)
    assert (await api.login_token(MEMBER, PASSWORD))[0] == "AUTHENTICATED"
    assert error_code(await api.login(MEMBER, NEW_PASSWORD), "INVALID_CREDENTIALS")
    assert await AuditEvent.all().count() == 0


async def test_the_current_password_is_checked_before_the_new_one(api, clinic):
    token = await signed_in(api, MEMBER)
    # Both wrong: the answer is about the current password, and it counts as a failed login.
    assert error_code(await change(api, token, new="short", current="not-the-password"), "INVALID_CREDENTIALS")


async def test_wrong_current_passwords_are_throttled_as_failed_logins(api, clinic, clock):
    token = await signed_in(api, MEMBER)
    answers = [await change(api, token, current="not-the-password") for _ in range(4)]
    assert [r.code for r in answers] == ["INVALID_CREDENTIALS"] * 4
    wait = waited(answers[-1], "INVALID_CREDENTIALS")  # the fourth starts the delay, as a login's
    # While it runs, even the right current password is refused unchecked, and so is a login:
    # the same count as the member's logins from this address.
    assert error_code(await change(api, token), "RATE_LIMITED")
    assert error_code(await api.login(MEMBER), "RATE_LIMITED")
    clock.advance(wait)
    assert (await change(api, token)).data == {"changePassword": True}


async def test_failed_logins_count_against_a_change_of_password(api, clinic, clock):
    token = await signed_in(api, MEMBER)
    for _ in range(4):
        assert error_code(await api.login(MEMBER, "not-the-password"), "INVALID_CREDENTIALS")
    assert error_code(await change(api, token), "RATE_LIMITED")
    clock.advance(60)
    assert (await api.login_token(MEMBER, PASSWORD))[0] == "AUTHENTICATED"  # unchanged


@pytest.mark.parametrize("new, accepted", [
    ("zq8-Lw3", False),              # 7
    ("zq8-Lw3r", True),              # 8
    ("zq8-Lw3r" * 128, True),        # 1,024
    ("zq8-Lw3r" * 128 + "z", False),  # 1,025
    ("ñandúes", False),              # 7 code points (9 bytes of UTF-8): code points count
    ("ñandúes!", True),              # 8
], ids=["7", "8", "1024", "1025", "7-code-points", "8-code-points"])
async def test_a_new_password_is_8_to_1024_characters(api, clinic, new, accepted):
    token = await signed_in(api, MEMBER)
    r = await change(api, token, new)
    if accepted:
        assert r.data == {"changePassword": True}, r.body
        assert (await api.login_token(MEMBER, new))[0] == "AUTHENTICATED"
    else:
        assert error_code(r, "BAD_USER_INPUT"), r.body
        assert "characters" in r.errors[0]["message"]
        assert r.errors[0]["extensions"]["argument"] == "newPassword"
        assert (await api.login_token(MEMBER, PASSWORD))[0] == "AUTHENTICATED"


@pytest.mark.parametrize("new", ["password1", "Iloveyou1", "QWERTYUIOP", "ｐａｓｓｗｏｒｄ１"])
async def test_a_commonly_used_password_is_refused(api, clinic, new):
    token, other = await signed_in(api, MEMBER), await signed_in(api, MEMBER)
    r = await change(api, token, new)
    assert error_code(r, "BAD_USER_INPUT"), r.body
    assert "commonly used" in r.errors[0]["message"]
    assert await alive(api, other)  # a refused change ends nothing
    assert error_code(await api.login(MEMBER, new), "INVALID_CREDENTIALS")


@pytest.mark.parametrize("new", [MEMBER, MEMBER.upper(), "Member@Example.org"])
async def test_the_email_is_refused_as_a_password_whatever_its_case(api, clinic, new):
    token = await signed_in(api, MEMBER)
    r = await change(api, token, new)
    assert error_code(r, "BAD_USER_INPUT"), r.body
    assert "email" in r.errors[0]["message"]
    assert error_code(await api.login(MEMBER, new), "INVALID_CREDENTIALS")


async def test_changing_the_password_needs_a_full_session(api, clinic, clock):
    manager = await enforcing_manager(api, clinic)  # the member must now enrol
    status, enrolling = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    pending = await password_only(api, MANAGER)
    assert error_code(await change(api, enrolling), "ENROLMENT_REQUIRED")
    assert error_code(await change(api, pending), "TWO_FACTOR_REQUIRED")
    assert error_code(await change(api, None), "UNAUTHENTICATED")
    assert (await api.login_token(MEMBER, PASSWORD))[0] == "ENROLMENT_REQUIRED"  # unchanged
    assert (await change(api, manager)).data == {"changePassword": True}


async def test_a_change_of_password_is_in_the_audit_log_without_the_password(api, clinic):
    token = await signed_in(api, MEMBER)
    assert not (await change(api, token)).errors
    events = await AuditEvent.filter(action="PASSWORD_CHANGED").values("actor__email", "subject__email", "client_address")
    assert events == [{"actor__email": MEMBER, "subject__email": MEMBER, "client_address": CLIENT_ADDRESS}]


async def test_a_password_set_by_the_operator_ends_every_session(api, clinic, seed):
    tokens = [await signed_in(api, MEMBER) for _ in range(2)]
    await seed({"users": [{"email": MEMBER, "password": NEW_PASSWORD}]})  # `mandate import`'s own code
    assert [await alive(api, t) for t in tokens] == [False, False]
    assert (await api.login_token(MEMBER, NEW_PASSWORD))[0] == "AUTHENTICATED"


# --- User.sessions --------------------------------------------------------------------------


async def test_the_sessions_list_shows_each_live_session_as_its_user_sees_it(app, api, clinic, clock):
    login = await enrolled(api, MEMBER, clock)
    async with app_client(app, "198.51.100.20") as phone:
        r = await phone.post("/graphql", headers={"User-Agent": "MandatePhone/2.1 (test)"}, json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { status } }",
            "variables": {"e": MEMBER, "p": PASSWORD}})
        assert r.json()["data"] == {"login": {"status": "TWO_FACTOR_REQUIRED"}}
    listed = await sessions_of(api, login.token)
    assert [(s["status"], s["current"], s["clientAddress"], s["userAgent"]) for s in listed] == [
        ("TWO_FACTOR_REQUIRED", False, "198.51.100.20", "MandatePhone/2.1 (test)"),  # newest first
        ("AUTHENTICATED", True, CLIENT_ADDRESS, f"python-httpx/{httpx.__version__}"),
    ]
    pending, current = listed
    assert timedelta(minutes=10) == at(pending["expiresAt"]) - at(pending["createdAt"])
    assert timedelta(hours=12) == at(current["expiresAt"]) - at(current["createdAt"])
    assert all(at(s["createdAt"]).utcoffset() is not None for s in listed)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_sessions_list_tells_what_each_session_may_do_now(api, clinic):
    manager = (await api.enrol(await signed_in(api, MANAGER))).token
    await enforce(api, manager, clinic, on=True)
    status, _ = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    await enforce(api, manager, clinic, on=False)  # freed: that session is a full one from its next request
    token = await signed_in(api, MEMBER)
    assert [(s["status"], s["current"]) for s in await sessions_of(api, token)] == [
        ("AUTHENTICATED", True), ("AUTHENTICATED", False),
    ]
    status, _ = await api.login_token(MANAGER)  # 2FA on: the second factor is due
    assert status == "TWO_FACTOR_REQUIRED"
    assert [(s["status"], s["current"]) for s in await sessions_of(api, manager)] == [
        ("TWO_FACTOR_REQUIRED", False), ("AUTHENTICATED", True),
    ]


async def test_a_user_agent_is_kept_cut_and_storable(api, clinic):
    for agent in ("A" * 5000, "bad\x00agent"):
        r = await api.client.post("/graphql", headers={"User-Agent": agent}, json={
            "query": "mutation($e: String!) { login(email: $e, password: \"%s\") { token } }" % PASSWORD,
            "variables": {"e": LONER}})
        assert "errors" not in r.json(), r.json()
    token = await signed_in(api, LONER)
    agents = [s["userAgent"] for s in await sessions_of(api, token)]
    assert agents[1:] == ["bad\ufffdagent", "A" * 256]


async def test_a_user_reads_only_their_own_sessions(api, clinic):
    manager = await enforcing_manager(api, clinic)
    r = await api.gql("query($id: ID!) { account(id: $id) { twoFactorCompliance { pendingUsers { email sessions { id } } } } }",
                      {"id": clinic}, token=manager)
    assert error_code(r, "FORBIDDEN"), r.body  # the member's, to their manager


# --- revokeSession --------------------------------------------------------------------------


async def test_revoking_another_of_ones_sessions_ends_it_only(api, clinic):
    token, other = await signed_in(api, MEMBER), await signed_in(api, MEMBER)
    listed = await sessions_of(api, token)
    target = next(s["id"] for s in listed if not s["current"])
    assert (await api.gql(REVOKE, {"id": target}, token=token)).data == {"revokeSession": True}
    assert not await alive(api, other) and await alive(api, token)
    assert [s["id"] for s in await sessions_of(api, token)] == [s["id"] for s in listed if s["current"]]


async def test_revoking_the_current_session_ends_it(api, clinic):
    token, other = await signed_in(api, MEMBER), await signed_in(api, MEMBER)
    current = next(s["id"] for s in await sessions_of(api, token) if s["current"])
    assert (await api.gql(REVOKE, {"id": current}, token=token)).data == {"revokeSession": True}
    assert not await alive(api, token) and await alive(api, other)


async def test_another_users_unknown_or_ended_session_is_not_found(api, clinic):
    member, manager = await signed_in(api, MEMBER), await signed_in(api, MANAGER)
    managers_session = (await sessions_of(api, manager))[0]["id"]
    ended = await signed_in(api, MEMBER)
    ended_id = next(s["id"] for s in await sessions_of(api, ended) if s["current"])
    assert (await api.gql("mutation { logout }", token=ended)).data == {"logout": True}
    for target in (managers_session, session_id(999999), ended_id):
        r = await api.gql(REVOKE, {"id": target}, token=member)
        assert error_code(r, "NOT_FOUND"), r.body
    assert await alive(api, manager)
    assert error_code(await api.gql(REVOKE, {"id": clinic}, token=member), "BAD_USER_INPUT")  # an account's id


async def test_sessions_are_listed_and_revoked_by_full_sessions_only(api, clinic):
    manager = await enforcing_manager(api, clinic)
    managers_session = next(s["id"] for s in await sessions_of(api, manager) if s["current"])
    status, enrolling = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    pending = await password_only(api, MANAGER)
    for token, code in ((enrolling, "ENROLMENT_REQUIRED"), (pending, "TWO_FACTOR_REQUIRED")):
        assert error_code(await api.gql(SESSIONS, token=token), code)
        assert error_code(await api.gql(REVOKE, {"id": managers_session}, token=token), code)
    assert await alive(api, manager)
