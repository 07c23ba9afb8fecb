"""The response cache (gql/response_cache.py): a repeated query over unchanged data is answered
in one statement, and never with stale data, another caller's data or a dead session's.

Every test here sends the same bytes twice around a change and checks the second answer is what
a fresh execution gives: the change comes through the API, through another app instance (as
another server process would be), or straight through SQL, as an operator's would.
"""

from __future__ import annotations

import importlib

import pytest
from tortoise import Tortoise, connections

from mandate.gql.app import create_app
from mandate.config import reload_settings
from tests.conftest import Api
from tests.test_enforcement import (
    DENTAL, DENTAL_MEMBER, GROUP, GROUP_MANAGER, PRACTICE, PRACTICE_MEMBER, enforce, seed_trees,
    signed_in, with_two_factor,
)

WATCHED_TABLES = [
    *importlib.import_module("mandate.models.migrations.0002_data_version").WATCHED_TABLES,
    *importlib.import_module("mandate.models.migrations.0005_totp_devices").WATCHED_TABLES,
]
UNWATCHED_TABLES = {"sessions", "throttles"}  # no query shows them; each request checks its own session

TREE = "{ accounts { name twoFactorEnforcement { enforced } descendants { name twoFactorEnforcement { enforced } } } }"
ME = "{ me { email twoFactorRequired } }"


async def execute(sql: str) -> None:
    await connections.get("default").execute_script(sql)


def enforced_names(body: dict) -> set[str]:
    top = body["data"]["accounts"][0]
    return {a["name"] for a in [top, *top["descendants"]] if a["twoFactorEnforcement"]["enforced"]}


async def test_a_repeated_query_is_answered_alike_in_one_statement(api, seed, statements):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    first = await api.gql(TREE, token=token)
    statements.clear()
    second = await api.gql(TREE, token=token)
    assert second.body == first.body
    assert len(statements) == 1


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
    assert not (await api.gql(TREE, token=member)).errors  # now held in the cache
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


async def data_version() -> int:
    rows = await connections.get("default").execute_query_dict("SELECT version FROM mandate_data_version")
    return rows[0]["version"]


@pytest.mark.parametrize("table", WATCHED_TABLES)
async def test_every_write_to_a_watched_table_replaces_the_data_version(api, seed, table):
    await seed_trees(api, seed)
    await with_two_factor(api, GROUP_MANAGER)  # recovery codes and audit events too
    before = await data_version()
    await execute(f"UPDATE {table} SET id = id WHERE id = (SELECT MIN(id) FROM {table})")
    assert await data_version() != before


async def test_inserts_and_deletes_replace_the_data_version_too(api, seed):
    await seed_trees(api, seed)
    for statement in (
        "INSERT INTO accounts (name, enforced) VALUES ('Scratch', FALSE)",
        "DELETE FROM accounts WHERE name = 'Scratch'",
    ):
        before = await data_version()
        await execute(statement)
        assert await data_version() != before, statement


def test_every_table_is_watched_or_said_not_to_be():
    tables = {model._meta.db_table for model in Tortoise.apps["models"].values()}
    assert tables == set(WATCHED_TABLES) | UNWATCHED_TABLES


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


async def test_a_session_ended_or_expired_is_refused_though_its_answer_was_cached(api, seed, clock):
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(ME, token=token)).errors
    assert not (await api.gql("mutation { logout }", token=token)).errors
    assert (await api.gql(ME, token=token)).code == "UNAUTHENTICATED"

    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(ME, token=token)).errors
    clock.advance(13 * 3600)  # past MANDATE_SESSION_HOURS
    assert (await api.gql(ME, token=token)).code == "UNAUTHENTICATED"


async def test_mutations_and_answers_with_errors_are_never_kept(api, seed, statements):
    ids = await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    enrol = "mutation { enrolTotp { secret } }"
    secrets = {(await api.gql(enrol, token=token)).data["enrolTotp"]["secret"] for _ in range(2)}
    assert len(secrets) == 2

    refused = "query($id: ID!) { account(id: $id) { name } }"
    assert (await api.gql(refused, {"id": ids["South Care"]}, token=token)).code == "NOT_FOUND"
    statements.clear()
    assert (await api.gql(refused, {"id": ids["South Care"]}, token=token)).code == "NOT_FOUND"
    assert len(statements) > 1  # executed again


async def test_the_cache_can_be_turned_off(api, seed, statements, monkeypatch):
    monkeypatch.setenv("MANDATE_RESPONSE_CACHE_MB", "0")
    reload_settings()
    import httpx

    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    transport = httpx.ASGITransport(app=create_app(manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        uncached = Api(http)
        await uncached.gql(ME, token=token)
        statements.clear()
        await uncached.gql(ME, token=token)
    assert len(statements) == 3  # the session, who must use 2FA, and no cache look


async def test_a_session_changed_straight_in_the_database_is_answered_as_it_now_stands(api, seed):
    # Sessions are not watched (logins would empty the cache): the session is part of the key.
    await seed_trees(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    assert not (await api.gql(TREE, token=token)).errors
    await execute("UPDATE sessions SET kind = 'password'")
    assert (await api.gql(TREE, token=token)).code == "TWO_FACTOR_REQUIRED"
