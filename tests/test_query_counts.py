"""SQL statements per request are exact and do not grow with the tree.

Counted at tortoise's connection, for whichever database the suite runs on. Each count is of a
document's first run, which executes it; its repeat over unchanged data is answered from the
response cache in one statement (tests/test_response_cache.py). The first statement of every
request is that cache's look: the caller's session and the data version.
"""

from __future__ import annotations

import pytest
from tortoise.transactions import in_transaction

from tests.conftest import totp_now

TREE = """{ accounts { id name
  twoFactorEnforcement { enforced enforcedHere source { id name } } sites { id name }
  children { id name twoFactorEnforcement { enforced source { id name } } sites { id name }
    children { id name twoFactorEnforcement { enforced source { id name } } sites { id name } } } } }"""
TREE_BY_FRAGMENTS = """fragment Level on Account { id name twoFactorEnforcement { enforced source { id name } } ...Sites }
fragment Sites on Account { sites { id name } }
{ accounts { ...Level children { ...Level children { ... on Account { ...Level } } } } }"""
FLAT = "{ accounts { id descendants { id name parent { id } twoFactorEnforcement { enforced } sites { id } } } }"


def organisation(practices: int, clinics: int) -> dict:
    return {
        "users": [{"email": "grace@example.org"}],
        "accounts": [{
            "name": "Group", "managers": ["grace@example.org"], "sites": [{"name": "Head office"}],
            "children": [
                {"name": f"Practice {p}", "sites": [{"name": f"Site {p}.{s}"} for s in range(3)],
                 "children": [{"name": f"Clinic {p}.{c}", "sites": [{"name": f"Site {p}.{c}.{s}"} for s in range(3)]}
                              for c in range(clinics)]}
                for p in range(practices)
            ],
        }],
    }


async def cost(api, statements, query: str, token: str) -> int:
    statements.clear()
    result = await api.gql(query, token=token)
    assert not result.errors, result.body
    return len(statements)


@pytest.mark.parametrize("practices, clinics", [(3, 2), (40, 49)], ids=["10-accounts", "2001-accounts"])
async def test_the_tree_document_costs_eleven_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # cache look + session + who must use 2FA + the caller's roles and sites (2) + the tops with their
    # ancestors + sites and children per level (2 x 2) + the last level's sites
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, TREE, token) == 11
    assert await cost(api, statements, TREE, token) == 1  # the same again: from the cache
    # Sites asked for through fragments are loaded ahead, a level at a time, all the same.
    assert await cost(api, statements, TREE_BY_FRAGMENTS, token) == 11


@pytest.mark.parametrize("practices, clinics", [(3, 2), (40, 49)], ids=["10-accounts", "2001-accounts"])
async def test_the_flat_tree_document_costs_nine_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # cache look + session + who must use 2FA + roles and sites (2) + tops + the subtree (one recursive CTE)
    # + every descendant's parent view (one batch) + every descendant's sites (one batch)
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, FLAT, token) == 9


async def test_a_request_of_an_enrolled_user_authenticates_in_one_statement(api, seed, statements):
    await seed(organisation(1, 1))
    login = await api.enrol((await api.login_token("grace@example.org"))[1])
    assert await cost(api, statements, "{ me { id } }", login.token) == 2  # cache look, session
    assert await cost(api, statements, "{ me { id } }", login.token) == 1  # cache look


async def test_who_must_use_two_factor_is_one_statement_whatever_the_trees_size(api, seed, statements):
    await seed(organisation(20, 9))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, "{ me { id } }", token) == 3  # cache look, the session, the rule


async def test_a_document_seen_before_is_not_validated_again(api, seed):
    # Two callers, so the second request executes (the response cache is per session): its
    # validation comes from strawberry's ValidationCache, whose key holds the rule classes.
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



@pytest.fixture
async def every_statement(statements, monkeypatch):
    """`statements`, and the statements sent inside transactions too (their own client class)."""
    async with in_transaction() as transaction:
        wrapper = type(transaction)
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(wrapper, name)

        async def counted(self, query, *args, _original=original, **kwargs):
            statements.append(query)
            return await _original(self, query, *args, **kwargs)

        monkeypatch.setattr(wrapper, name, counted)
    return statements


async def test_a_login_and_its_second_factor_write_the_device_row_never_users(api, member, every_statement, clock):
    clock.advance(30)
    every_statement.clear()
    status, token = await api.login_token("member@example.org")
    assert status == "TWO_FACTOR_REQUIRED"
    result = await api.verify(token, totp_now(member.secret))
    assert result.errors == [], result.body
    written = [statement.split('"')[1] for statement in every_statement if statement.startswith(("UPDATE", "INSERT", "DELETE"))]
    assert "users" not in written and written.count("totp_devices") == 1, written  # the step, consumed
    # login 9: cache look + address's standing + two claims (read, then compare-and-set) + the user
    # with their device + the reset + the session; verify 8: cache look + the session with its
    # user and device + the claim (2) + the step + the old session revoked + the new one + the reset
    assert len(every_statement) == 17
