"""API tokens for automation scripts (API.md, release 2): created from a session that passed the
second factor, shown once, stored as hashes, acting as their owner within their scopes, and
ending with whatever ends trust in the owner's login."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from tortoise import connections

from mandate.models.memberships import remove_member
from mandate.models.tables import Account, ApiToken, AuditEvent, User
from mandate.models.user_admin import disable_user

from tests.support import worlds
from tests.support.api import CLIENT_ADDRESS, PASSWORD, answered, error_code, leaked, timestamp
from tests.support.api_tokens import CREATE_DEFAULT, api_token, create_api_token, live_tokens, revoke_api_token
from tests.support.audit import audit_events
from tests.support.codes import totp_now
from tests.support.databases import TABLES
from tests.support.documents import ACCOUNTS, DISABLE, ENROL, LOGOUT, ME, REGENERATE, VERIFY
from tests.support.enforcement import enforcement_of, set_enforcement
from tests.support.people import enrolled, signed_in

RESET = "mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { email twoFactorEnabled } }"
LOGIN = 'mutation { login(email: "loner@example.org", password: "password-123") { status } }'
CONFIRM = 'mutation { confirmTotp(code: "123456") { token } }'


@pytest.fixture
async def manager(api, clinic, clock):
    """The Clinic's manager, enrolled: a session that passed the second factor."""
    return await enrolled(api, worlds.MANAGER, clock)


async def me(api, token: str) -> dict:
    r = await api.gql(ME, token=token)
    assert not r.errors, r.body
    return r.data["me"]


async def still_works(api, token: str) -> bool:
    return await answered(api, token, "{ me { id } }", "UNAUTHENTICATED")


# --- Creation ------------------------------------------------------------------------------------


async def test_a_session_that_passed_the_second_factor_creates_a_token_shown_once(api, manager):
    r = await create_api_token(api, manager.token, ["MANAGE", "READ"], name="nightly enforcement")
    assert not r.errors, r.body
    created = r.data["createApiToken"]
    assert created["token"].startswith("mandate_pat_") and len(created["token"]) == len("mandate_pat_") + 43
    token = created["apiToken"]
    assert token["name"] == "nightly enforcement" and token["scopes"] == ["MANAGE", "READ"]  # as given
    assert token["lastUsedAt"] is None
    assert timestamp(token["expiresAt"]) - timestamp(token["createdAt"]) == timedelta(days=30).total_seconds()
    listed = await live_tokens(api, manager.token)
    assert listed == [token]  # listed without the token string: never shown again
    assert leaked(await api.gql("{ me { apiTokens { id name } } }", token=manager.token), created["token"]) == []


async def test_expires_in_days_defaults_to_thirty(api, manager):
    r = await api.gql(CREATE_DEFAULT, {"name": "script", "scopes": ["READ"]}, token=manager.token)
    assert not r.errors, r.body
    created = r.data["createApiToken"]["apiToken"]
    assert timestamp(created["expiresAt"]) - timestamp(created["createdAt"]) == 30 * 86400


async def test_a_full_session_without_a_second_factor_must_set_up_two_factor_first(api, clinic):
    session = await signed_in(api, worlds.MANAGER)
    assert error_code(await create_api_token(api, session, ["READ"]), "TWO_FACTOR_SETUP_REQUIRED")
    assert await ApiToken.all().count() == 0


async def test_a_token_cannot_create_a_token(api, manager):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    assert error_code(await create_api_token(api, token, ["READ"]), "FORBIDDEN")
    assert await ApiToken.all().count() == 1


@pytest.mark.parametrize("days", [0, -1, 366, 10**6, None])
async def test_expires_in_days_outside_one_to_365_is_bad_input_and_writes_nothing(api, manager, days):
    assert error_code(await create_api_token(api, manager.token, ["READ"], days=days), "BAD_USER_INPUT")
    assert await ApiToken.all().count() == 0
    assert await AuditEvent.filter(action="API_TOKEN_CREATED").count() == 0


@pytest.mark.parametrize("days", [1, 365])
async def test_expires_in_days_at_either_end_is_taken(api, manager, days):
    r = await create_api_token(api, manager.token, ["READ"], days=days)
    assert not r.errors, r.body
    created = r.data["createApiToken"]["apiToken"]
    assert timestamp(created["expiresAt"]) - timestamp(created["createdAt"]) == days * 86400


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "nul\x00byte"])
async def test_a_name_empty_too_long_or_unstorable_is_bad_input(api, manager, name):
    r = await api.gql(
        "mutation($n: String!) { createApiToken(name: $n, scopes: [READ]) { token } }", {"n": name},
        token=manager.token,
    )
    assert error_code(r, "BAD_USER_INPUT"), r.body
    assert await ApiToken.all().count() == 0


@pytest.mark.parametrize("scopes", [[], ["READ", "READ"], ["MANAGE", "READ", "MANAGE"]])
async def test_no_scope_or_a_scope_twice_is_bad_input(api, manager, scopes):
    assert error_code(await create_api_token(api, manager.token, scopes), "BAD_USER_INPUT")
    assert await ApiToken.all().count() == 0


async def test_an_unknown_scope_is_refused_by_validation(api, manager):
    r = await create_api_token(api, manager.token, ["WRITE"])
    assert r.errors and await ApiToken.all().count() == 0


async def test_tokens_are_stored_as_hashes_only(api, manager):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    assert await ApiToken.all().values_list("token_hash", flat=True) == [hashlib.sha256(token.encode()).hexdigest()]
    conn = connections.get("default")
    secret_part = token.removeprefix("mandate_pat_")
    for table in TABLES:
        rows = await conn.execute_query_dict(f"SELECT * FROM {table}")
        assert not [row for row in rows if any(secret_part in str(value) for value in row.values())], table


# --- Acting as the owner ---------------------------------------------------------------------------


async def test_a_read_token_reads_what_its_owner_reads(api, manager, clinic):
    token, _ = await api_token(api, manager.token, ["READ"])
    assert (await me(api, token))["email"] == worlds.MANAGER
    r = await api.gql(ACCOUNTS, token=token)
    assert r.data == {"accounts": [{"id": clinic, "name": worlds.CLINIC}]}
    r = await api.gql("query($id: ID!) { account(id: $id) { twoFactorCompliance { totalUsers } } }",
                      {"id": clinic}, token=token)
    assert r.data == {"account": {"twoFactorCompliance": {"totalUsers": 2}}}  # the owner's manager rights


async def test_a_read_token_is_refused_set_enforcement(api, manager, clinic):
    token, _ = await api_token(api, manager.token, ["READ"])
    assert error_code(await set_enforcement(api, token, clinic, True), "FORBIDDEN")
    assert (await enforcement_of(api, manager.token, clinic))["enforcedHere"] is False


async def test_a_manage_token_switches_enforcement_as_its_owner(api, manager, clinic):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    r = await set_enforcement(api, token, clinic, True)
    assert not r.errors, r.body
    enforcement = await enforcement_of(api, manager.token, clinic)
    assert enforcement["enforcedHere"] is True and enforcement["changedBy"] == {"email": worlds.MANAGER}
    [switched] = [e for e in await audit_events(api, manager.token, clinic) if e["action"] == "ENFORCEMENT_ON"]
    assert switched["actor"] == {"email": worlds.MANAGER} and switched["clientAddress"] == CLIENT_ADDRESS


async def test_a_manage_token_resets_a_members_two_factor(api, manager, member, clinic):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    member_id = (await me(api, member.token))["id"]
    r = await api.gql(RESET, {"a": clinic, "u": member_id}, token=token)
    assert r.data == {"resetMemberTwoFactor": {"email": worlds.MEMBER, "twoFactorEnabled": False}}, r.body


async def test_a_token_of_a_manager_who_lost_their_role_is_refused(api, manager, clinic):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    await remove_member((await Account.get(name=worlds.CLINIC)).id, await User.get(email=worlds.MANAGER))
    assert error_code(await set_enforcement(api, token, clinic, True), "FORBIDDEN")
    assert (await api.gql(ACCOUNTS, token=token)).data == {"accounts": []}


async def test_a_manage_token_of_a_member_manages_nothing(api, member, clinic):
    token, _ = await api_token(api, member.token, ["MANAGE"])
    assert error_code(await set_enforcement(api, token, clinic, True), "FORBIDDEN")


@pytest.mark.parametrize("scopes", [["READ"], ["MANAGE"]])
@pytest.mark.parametrize("document", [
    LOGIN, ENROL, CONFIRM,
    'mutation { verifyTwoFactor(code: "123456") { token } }',
    'mutation { disableTotp(code: "123456") { email } }',
    'mutation { regenerateRecoveryCodes(code: "123456") }',
    'mutation { createApiToken(name: "another", scopes: [READ]) { token } }',
    'mutation { replaceTotp(code: "123456") { secret } }',
    f'mutation {{ changePassword(currentPassword: "{PASSWORD}", newPassword: "a-fresh-passphrase-91") }}',
], ids=["login", "enrolTotp", "confirmTotp", "verifyTwoFactor", "disableTotp", "regenerateRecoveryCodes",
        "createApiToken", "replaceTotp", "changePassword"])
async def test_every_other_mutation_is_forbidden_to_a_token(api, manager, scopes, document):
    token, _ = await api_token(api, manager.token, scopes)
    r = await api.gql(document, token=token)
    assert error_code(r, "FORBIDDEN"), r.body
    assert (await me(api, manager.token))["twoFactorEnabled"] is True
    assert await ApiToken.all().count() == 1


async def test_a_token_reads_its_owners_own_fields_and_tokens(api, manager):
    token, token_id = await api_token(api, manager.token, ["READ"])
    r = await api.gql("{ me { recoveryCodesRemaining apiTokens { id } } }", token=token)
    assert r.data == {"me": {"recoveryCodesRemaining": 10, "apiTokens": [{"id": token_id}]}}, r.body


async def test_nobody_else_reads_a_users_tokens(api, manager, clinic):
    await api_token(api, manager.token, ["MANAGE"])
    member = await enrolled(api, worlds.MEMBER)
    member_token, _ = await api_token(api, member.token, ["READ"])
    await set_enforcement(api, manager.token, clinic, True)
    for caller in (member.token, member_token):
        r = await api.gql("query($id: ID!) { account(id: $id) { twoFactorEnforcement { changedBy { apiTokens { id } } } } }",
                          {"id": clinic}, token=caller)
        assert r.codes == ["FORBIDDEN"], r.body


# --- Revocation --------------------------------------------------------------------------------------


async def test_revoking_a_token_ends_it_at_once_and_is_audited(api, manager, clinic):
    token, token_id = await api_token(api, manager.token, ["MANAGE"])
    assert (await revoke_api_token(api, manager.token, token_id)).data == {"revokeApiToken": True}
    assert not await still_works(api, token)
    assert error_code(await set_enforcement(api, token, clinic, True), "UNAUTHENTICATED")
    assert await live_tokens(api, manager.token) == []
    actions = [e["action"] for e in await audit_events(api, manager.token, clinic)]
    assert actions[:2] == ["API_TOKEN_REVOKED", "API_TOKEN_CREATED"]


async def test_a_token_revokes_itself_and_its_owners_other_tokens(api, manager):
    first, first_id = await api_token(api, manager.token, ["READ"], name="first")
    second, second_id = await api_token(api, manager.token, ["READ"], name="second")
    assert (await revoke_api_token(api, first, second_id)).data == {"revokeApiToken": True}
    assert not await still_works(api, second) and await still_works(api, first)
    assert (await revoke_api_token(api, first, first_id)).data == {"revokeApiToken": True}
    assert not await still_works(api, first)


async def test_revoking_an_unknown_another_users_or_a_revoked_token_is_not_found(api, manager, member):
    _, mine_id = await api_token(api, manager.token, ["READ"])
    _, theirs_id = await api_token(api, member.token, ["READ"])
    await revoke_api_token(api, manager.token, mine_id)
    for token_id in (theirs_id, mine_id, "QXBpVG9rZW46OTk5"):  # another user's, revoked, ApiToken:999
        assert error_code(await revoke_api_token(api, manager.token, token_id), "NOT_FOUND"), token_id
    assert await still_works(api, (await api_token(api, member.token, ["READ"]))[0])
    assert await ApiToken.filter(revoked_at__isnull=True).count() == 2  # the member's, untouched


async def test_revoking_with_a_malformed_id_is_bad_input(api, manager, clinic):
    for token_id in ("not-an-id", clinic):
        assert error_code(await revoke_api_token(api, manager.token, token_id), "BAD_USER_INPUT")


async def test_logout_with_a_token_revokes_it(api, manager, clinic):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    assert (await api.gql(LOGOUT, token=token)).data == {"logout": True}
    assert not await still_works(api, token)
    assert await still_works(api, manager.token)  # the session that made it lives on
    assert [e["action"] for e in await audit_events(api, manager.token, clinic)][0] == "API_TOKEN_REVOKED"


async def test_creation_is_audited_with_the_client_address(api, manager, clinic):
    await api_token(api, manager.token, ["READ"])
    [created] = [e for e in await audit_events(api, manager.token, clinic) if e["action"] == "API_TOKEN_CREATED"]
    assert created["actor"] == created["subject"] == {"email": worlds.MANAGER}
    assert created["clientAddress"] == CLIENT_ADDRESS


# --- What ends every token of a user ------------------------------------------------------------------


async def test_an_expired_token_is_unauthenticated_and_no_longer_listed(api, manager, clock):
    token, _ = await api_token(api, manager.token, ["READ"])
    r = await create_api_token(api, manager.token, ["READ"], name="longer", days=2)
    assert not r.errors
    clock.advance(86400 * 30 - 5)
    assert await still_works(api, token)
    clock.advance(10)
    assert not await still_works(api, token)
    session = await api.full_login(worlds.MANAGER, manager.secret, clock)
    assert await live_tokens(api, session) == []


async def test_disabling_two_factor_ends_every_token_for_good(api, manager, clock):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    r = await api.gql(DISABLE, {"c": totp_now(manager.secret)}, token=manager.token)
    assert not r.errors, r.body
    assert not await still_works(api, token)
    again = await enrolled(api, worlds.MANAGER, clock)  # 2FA back on: the old token stays dead
    assert not await still_works(api, token) and await live_tokens(api, again.token) == []


async def test_a_managers_reset_ends_the_members_tokens(api, manager, member, clinic):
    token, _ = await api_token(api, member.token, ["READ"])
    member_id = (await me(api, member.token))["id"]
    r = await api.gql(RESET, {"a": clinic, "u": member_id}, token=manager.token)
    assert not r.errors, r.body
    assert not await still_works(api, token)


async def test_a_password_set_by_the_operator_ends_every_token(api, manager, seed):
    token, _ = await api_token(api, manager.token, ["READ"])
    await seed({"users": [{"email": worlds.MANAGER, "password": PASSWORD}]})  # even the same one again
    assert not await still_works(api, token)


async def test_changing_ones_own_password_ends_every_token(api, manager):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
    r = await api.gql(change, {"c": PASSWORD, "n": "a-fresh-passphrase-91"}, token=manager.token)
    assert not r.errors, r.body
    assert not await still_works(api, token)
    assert await still_works(api, manager.token)  # the session that changed it stays


async def test_a_token_ends_no_session_and_may_not_end_one(api, manager):
    """revokeSession is a session's act: a token asking to end its owner's session is refused."""
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    sessions = (await api.gql("{ me { sessions { id current } } }", token=token)).data["me"]["sessions"]
    assert sessions and not any(s["current"] for s in sessions)  # a token is none of them
    r = await api.gql("mutation($id: ID!) { revokeSession(id: $id) }", {"id": sessions[0]["id"]}, token=token)
    assert error_code(r, "FORBIDDEN"), r.body
    assert await still_works(api, manager.token)


async def test_disabling_the_owner_ends_every_token(api, manager):
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    await disable_user(await User.get(email=worlds.MANAGER))
    assert not await still_works(api, token)


async def test_another_users_events_leave_a_token_alone(api, manager, member, seed):
    token, _ = await api_token(api, manager.token, ["READ"])
    await seed({"users": [{"email": worlds.MEMBER, "password": PASSWORD}]})
    await disable_user(await User.get(email=worlds.LONER))
    assert await still_works(api, token)


# --- lastUsedAt -------------------------------------------------------------------------------------


async def test_last_used_at_is_written_at_most_once_a_minute(api, manager, statements, clock):
    token, _ = await api_token(api, manager.token, ["READ"])

    async def cost() -> int:
        statements.clear()
        assert await still_works(api, token)
        return len(statements)

    assert await cost() == 2  # the caller, and lastUsedAt written
    first_use = (await live_tokens(api, token))[0]["lastUsedAt"]
    assert first_use is not None
    clock.advance(50)
    assert [await cost() for _ in range(100)] == [1] * 100  # the caller only
    assert (await live_tokens(api, manager.token))[0]["lastUsedAt"] == first_use
    clock.advance(11)
    assert await cost() == 2
    later = (await live_tokens(api, manager.token))[0]["lastUsedAt"]
    assert timestamp(later) - timestamp(first_use) == pytest.approx(61, abs=1)


async def test_a_token_callers_list_of_tokens_is_one_statement_whatever_their_number(api, manager, statements):
    tokens = [(await api_token(api, manager.token, ["READ"], name=f"script {n}"))[0] for n in range(5)]
    assert await still_works(api, tokens[0])  # lastUsedAt written: every request after costs the same
    statements.clear()
    assert len(await live_tokens(api, tokens[0])) == 5
    assert len(statements) == 2  # the caller, the list


async def test_a_token_caller_verifying_after_login_is_still_refused(api, manager, clock):
    # A token cannot pass a second factor on anyone's behalf: it is no session.
    token, _ = await api_token(api, manager.token, ["MANAGE"])
    clock.advance(30)
    r = await api.gql(VERIFY, {"c": totp_now(manager.secret)}, token=token)
    assert error_code(r, "FORBIDDEN")
    r = await api.gql(REGENERATE, {"c": totp_now(manager.secret)}, token=token)
    assert error_code(r, "FORBIDDEN")
    assert await still_works(api, token)


@pytest.mark.parametrize("token", ["mandate_pat_", "mandate_pat_" + "A" * 43, "mandate_pat_" + "x" * 300])
async def test_an_unknown_token_with_the_prefix_is_unauthenticated(api, manager, token):
    r = await api.gql("{ me { id } }", token=token)
    assert error_code(r, "UNAUTHENTICATED"), r.body

