"""Rule 8: a change made anywhere holds from the next request everywhere. No answer is kept
between requests (release 1's response cache is gone: migration 0004), and these tests hold it so.

Every test here sends the same bytes twice around a change and checks the second answer is what
a fresh execution gives: the change comes through the API, through another app instance (as
another server process would be), or straight through SQL, as an operator's would.
"""

from __future__ import annotations

import pytest
from tortoise import connections

from mandate.gql.app import create_app
from tests.support.api import Api
from tests.support.enforcement import enforce
from tests.support.people import signed_in, with_two_factor
from tests.support.worlds import (
    DENTAL,
    DENTAL_MEMBER,
    GROUP,
    GROUP_MANAGER,
    PRACTICE,
    PRACTICE_MEMBER,
    seed_trees,
)


TREE = "{ accounts { name twoFactorEnforcement { enforced } descendants { name twoFactorEnforcement { enforced } } } }"
ME = "{ me { email twoFactorRequired } }"


async def execute(sql: str) -> None:
    await connections.get("default").execute_script(sql)


def enforced_names(body: dict) -> set[str]:
    top = body["data"]["accounts"][0]
    return {a["name"] for a in [top, *top["descendants"]] if a["twoFactorEnforcement"]["enforced"]}


async def test_an_enforcement_switched_through_the_api_is_seen_at_once(api, seed):
    ids = await seed_trees(api, seed)
    manager = await with_two_factor(api, GROUP_MANAGER)
    before = await api.gql(TREE, token=manager)
    assert enforced_names(before.body) == set()
    await enforce(api, manager, ids[PRACTICE])
    after = await api.gql(TREE, token=manager)
    assert PRACTICE in enforced_names(after.body) and DENTAL in enforced_names(after.body)


async def test_a_member_bound_by_a_new_enforcement_is_limited_on_the_next_identical_request(api, seed):
    ids = await seed_trees(api, seed)
    member = await signed_in(api, DENTAL_MEMBER)
    assert not (await api.gql(TREE, token=member)).errors
    assert not (await api.gql(TREE, token=member)).errors
    await enforce(api, await with_two_factor(api, GROUP_MANAGER), ids[GROUP])
    assert (await api.gql(TREE, token=member)).code == "ENROLMENT_REQUIRED"


async def test_a_change_made_by_another_server_process_is_seen(api, seed, database_url):
    ids = await seed_trees(api, seed)
    manager = await with_two_factor(api, GROUP_MANAGER)
    await api.gql(TREE, token=manager)
    import httpx

    transport = httpx.ASGITransport(app=create_app(manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        await enforce(Api(http), manager, ids[DENTAL])
    assert enforced_names((await api.gql(TREE, token=manager)).body) == {DENTAL, "Leeds Lab"}


@pytest.mark.parametrize("change", [
    "UPDATE accounts SET name = 'Renamed' WHERE name = 'Leeds Practice'",
    "UPDATE accounts SET enforced = TRUE WHERE name = 'Leeds Practice'",
])
async def test_a_change_made_straight_in_the_database_is_seen(api, seed, change):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    before = await api.gql(TREE, token=token)
    await execute(change)
    after = await api.gql(TREE, token=token)
    assert after.body != before.body


async def test_each_caller_gets_their_own_answer_to_the_same_bytes(api, seed):
    await seed_trees(api, seed)
    member = await signed_in(api, PRACTICE_MEMBER)
    other = await signed_in(api, DENTAL_MEMBER)
    assert (await api.gql(ME, token=member)).data["me"]["email"] == PRACTICE_MEMBER
    assert (await api.gql(ME, token=other)).data["me"]["email"] == DENTAL_MEMBER
    assert (await api.gql(ME, token=member)).data["me"]["email"] == PRACTICE_MEMBER
    # Without a token, `me` is null; a dead or malformed token is refused, never answered as nobody.
    assert (await api.gql(ME)).data == {"me": None}
    assert (await api.gql(ME, token="not-a-live-token")).code == "UNAUTHENTICATED"
    response = await api.client.post("/graphql", json={"query": ME}, headers={"Authorization": "Basic x"})
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_session_ended_or_expired_is_refused_though_it_was_answered_before(api, seed, clock):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(ME, token=token)).errors
    assert not (await api.gql("mutation { logout }", token=token)).errors
    assert (await api.gql(ME, token=token)).code == "UNAUTHENTICATED"

    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(ME, token=token)).errors
    clock.advance(13 * 3600)  # past MANDATE_SESSION_HOURS
    assert (await api.gql(ME, token=token)).code == "UNAUTHENTICATED"


async def test_the_same_mutation_twice_runs_twice(api, seed):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    enrol = "mutation { enrolTotp { secret } }"
    secrets = {(await api.gql(enrol, token=token)).data["enrolTotp"]["secret"] for _ in range(2)}
    assert len(secrets) == 2


async def test_a_repeated_query_runs_in_full_each_time(api, seed, statements):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    await api.gql(TREE, token=token)
    statements.clear()
    await api.gql(TREE, token=token)
    first = len(statements)
    statements.clear()
    await api.gql(TREE, token=token)
    assert len(statements) == first > 1  # no answer is kept: the caller, then the tree, afresh


async def test_a_session_changed_straight_in_the_database_is_answered_as_it_now_stands(api, seed):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(TREE, token=token)).errors
    await execute("UPDATE sessions SET kind = 'password'")
    assert (await api.gql(TREE, token=token)).code == "TWO_FACTOR_REQUIRED"
