"""SQL statements per request are exact and do not grow with the tree.

Counted at tortoise's connection, for whichever database the suite runs on. Every request with a
token starts with one statement, the caller's (models/callers.py): the live session, its user and
whether they are held to enrolment; or the live API token and its owner, plus its lastUsedAt written
at most once a minute. Nothing is answered from a cache: a repeat costs the same.
"""

from __future__ import annotations

import pytest


from tests.support.api_tokens import api_token
from tests.support.codes import totp_now
from tests.support.documents import TREE
from tests.support.worlds import organisation

TREE_BY_FRAGMENTS = """fragment Level on Account { id name twoFactorEnforcement { enforced source { id name } } ...Sites }
fragment Sites on Account { sites { id name } }
{ accounts { ...Level children { ...Level children { ... on Account { ...Level } } } } }"""
FLAT = "{ accounts { id descendants { id name parent { id } twoFactorEnforcement { enforced } sites { id } } } }"


async def cost(api, statements, query: str, token: str) -> int:
    statements.clear()
    result = await api.gql(query, token=token)
    assert not result.errors, result.body
    return len(statements)


@pytest.mark.parametrize("practices, clinics", [(3, 2), (40, 49)], ids=["10-accounts", "2001-accounts"])
async def test_the_tree_document_costs_nine_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # the caller + the caller's roles and sites (2) + the tops with their ancestors + sites and
    # children per level (2 x 2) + the last level's sites
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, TREE, token) == 9
    assert await cost(api, statements, TREE, token) == 9  # the same again: executed again
    # Sites asked for through fragments are loaded ahead, a level at a time, all the same.
    assert await cost(api, statements, TREE_BY_FRAGMENTS, token) == 9


@pytest.mark.parametrize("practices, clinics", [(3, 2), (40, 49)], ids=["10-accounts", "2001-accounts"])
async def test_the_flat_tree_document_costs_seven_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # the caller + roles and sites (2) + tops + the subtree (one recursive CTE)
    # + every descendant's parent view (one batch) + every descendant's sites (one batch)
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, FLAT, token) == 7


async def test_a_request_of_an_enrolled_user_authenticates_in_one_statement(api, seed, statements):
    await seed(organisation(1, 1))
    login = await api.enrol((await api.login_token("grace@example.org"))[1])
    assert await cost(api, statements, "{ me { id } }", login.token) == 1  # the caller
    assert await cost(api, statements, "{ me { id } }", login.token) == 1


async def test_who_must_use_two_factor_is_part_of_the_callers_one_statement_whatever_the_trees_size(api, seed, statements):
    await seed(organisation(20, 9))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, "{ me { id } }", token) == 1  # the caller, held to enrolment or not


async def test_an_api_token_caller_costs_what_a_session_costs_and_a_write_once_a_minute(api, seed, statements, clock):
    await seed(organisation(3, 2))
    login = await api.enrol((await api.login_token("grace@example.org"))[1])
    token, _ = await api_token(api, login.token, ["READ"])
    assert await cost(api, statements, "{ me { id } }", token) == 2  # the caller + lastUsedAt, first used
    assert await cost(api, statements, "{ me { id } }", token) == 1  # the caller
    assert await cost(api, statements, TREE, token) == 9  # as a session's
    clock.advance(61)
    assert await cost(api, statements, TREE, token) == 10  # lastUsedAt, a minute on
    assert await cost(api, statements, TREE, token) == 9


async def test_a_request_without_a_token_or_with_a_malformed_header_costs_no_statement(api, seed, statements):
    await seed(organisation(1, 1))
    for headers in ({}, {"Authorization": "Basic x"}, {"Authorization": "Bearer " + "x" * 300}):
        statements.clear()
        response = await api.client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
        assert response.status_code == 200 and statements == []


async def test_a_document_seen_before_is_not_validated_again(api, seed):
    # Two callers, the second's validation comes from strawberry's ValidationCache, whose key
    # holds the rule classes.
    from strawberry.extensions.validation_cache import _get_validate_cache

    await seed(organisation(1, 1))
    tokens = [(await api.login_token("grace@example.org"))[1] for _ in range(2)]
    validations = _get_validate_cache(256)
    query = "{ accounts { id name sites { id } } }"
    assert not (await api.gql(query, token=tokens[0])).errors
    before = validations.cache_info()
    assert not (await api.gql(query, token=tokens[1])).errors
    after = validations.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)


async def test_a_login_and_its_second_step_cost_the_same_whatever_the_tree(api, seed, statements, clock):
    # The token a login or its second step issues names the caller for the rest of the document
    # without another statement; neither grows with the tree.
    counts = []
    for practices in (1, 20):
        await seed(organisation(practices, 9))
        email = f"grace{practices}@example.org"
        await seed({"users": [{"email": email}], "accounts": [{"name": "Group", "managers": [email]}]})
        enrolled = await api.enrol((await api.login_token(email))[1])
        clock.advance(30)  # past the step the enrolment used
        statements.clear()
        status, password_only = await api.login_token(email)
        assert status == "TWO_FACTOR_REQUIRED"
        login = len(statements)
        statements.clear()
        assert not (await api.verify(password_only, totp_now(enrolled.secret))).errors
        counts.append((login, len(statements)))
    # login: the address's standing, the email's two throttle keys claimed, the user with their
    # device, then in one transaction the password checked still theirs (FOR UPDATE) and the
    # session; verifyTwoFactor: the caller, the factor's claim (its lock checked in
    # it), then in one transaction the step on the device row, the old session revoked, the new
    # one, the throttle cleared
    assert counts == [(9, 7)] * 2


async def test_a_login_and_its_second_factor_write_the_device_row_never_users(api, member, statements, clock):
    clock.advance(30)
    statements.clear()
    status, token = await api.login_token("member@example.org")
    assert status == "TWO_FACTOR_REQUIRED"
    result = await api.verify(token, totp_now(member.secret))
    assert result.errors == [], result.body
    written = [statement.split('"')[1] for statement in statements if statement.startswith(("UPDATE", "INSERT", "DELETE"))]
    assert "users" not in written and written.count("totp_devices") == 1, written  # the step, consumed
    # login (9) and its second step (7): every statement, transactions' included
    assert len(statements) == 16


GRACE = "mutation($a: ID!, $h: Int) { setEnforcement(accountId: $a, enforced: true, gracePeriodHours: $h) { id } }"


async def grace_world(api, seed, members: int) -> tuple[str, str]:
    """Group, managed by grace@example.org (enrolled), with `members` members; enforcement on
    with a day's grace. The manager's session and the group's id."""
    emails = [f"member{n}@example.org" for n in range(members)]
    await seed({"users": [{"email": "grace@example.org"}] + [{"email": e} for e in emails],
                "accounts": [{"name": "Group", "managers": ["grace@example.org"], "members": emails}]})
    manager = (await api.enrol((await api.login_token("grace@example.org"))[1])).token
    group = await api.account_id(manager, "Group")
    assert not (await api.gql(GRACE, {"a": group, "h": 24}, token=manager)).errors
    return manager, group


async def test_a_user_in_grace_costs_the_callers_one_statement_and_a_write_when_first_seen_or_freed(api, seed, statements):
    manager, group = await grace_world(api, seed, 1)
    status, token = await api.login_token("member0@example.org")  # the login records the start
    assert status == "AUTHENTICATED"
    assert await cost(api, statements, "{ me { id } }", token) == 1
    assert await cost(api, statements, "{ me { id } }", token) == 1
    # Switched off: the first request seen unbound forgets the start (a DELETE), then one again.
    off = "mutation($a: ID!) { setEnforcement(accountId: $a, enforced: false) { id } }"
    assert not (await api.gql(off, {"a": group}, token=manager)).errors
    assert await cost(api, statements, "{ me { id } }", token) == 2
    assert await cost(api, statements, "{ me { id } }", token) == 1
    # Switched on again: an open session's first request records a new start (an INSERT).
    assert not (await api.gql(GRACE, {"a": group, "h": 24}, token=manager)).errors
    assert await cost(api, statements, "{ me { id } }", token) == 2
    assert await cost(api, statements, "{ me { id } }", token) == 1


async def test_ones_own_deadline_is_read_with_the_caller(api, seed, statements):
    await grace_world(api, seed, 1)
    _, token = await api.login_token("member0@example.org")
    statements.clear()
    r = await api.gql("{ me { twoFactorDeadline } }", token=token)
    assert r.data["me"]["twoFactorDeadline"] is not None, r.body
    assert len(statements) == 1, statements  # the caller's statement alone


@pytest.mark.parametrize("members", [2, 40])
async def test_pending_users_deadlines_cost_one_statement_whatever_their_number(api, seed, statements, members):
    manager, group = await grace_world(api, seed, members)
    for n in range(0, members, 2):  # half of them seen, in grace
        assert (await api.login_token(f"member{n}@example.org"))[0] == "AUTHENTICATED"
    query = ("query($id: ID!) { account(id: $id) { twoFactorCompliance { pendingUsers { email twoFactorDeadline } } } }")
    statements.clear()
    r = await api.gql(query, {"id": group}, token=manager)
    assert not r.errors, r.body
    deadlines = [u["twoFactorDeadline"] for u in r.data["account"]["twoFactorCompliance"]["pendingUsers"]]
    assert len(deadlines) == members and sum(d is not None for d in deadlines) == members // 2
    # the caller + roles and sites (2) + the account's ancestors + the pending users + their deadlines
    assert len(statements) == 6, statements


async def test_the_sessions_list_costs_one_statement_whatever_the_number_of_sessions(api, seed, statements):
    await seed(organisation(1, 1))
    _, token = await api.login_token("grace@example.org")
    query = "{ me { sessions { id status current userAgent } } }"
    assert await cost(api, statements, query, token) == 2  # the caller + the user's live sessions
    for _ in range(9):
        await api.login_token("grace@example.org")
    assert await cost(api, statements, query, token) == 2


async def test_ones_own_sessions_and_tokens_cost_a_statement_each_however_often_one_appears(api, seed, statements):
    """A user appears many times in a document (as `me`, as the actor of their audit events):
    their own lists are loaded once each."""
    await seed(organisation(1, 1))
    _, token = await api.login_token("grace@example.org")
    fields = "sessions { id } apiTokens { id }"
    query = "{ " + " ".join(f"me{n}: me {{ {fields} }}" for n in range(5)) + " }"
    assert await cost(api, statements, query, token) == 3  # the caller + the sessions + the tokens
