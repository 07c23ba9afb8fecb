"""SQL statements per request are exact and do not grow with the tree.

Counted at tortoise's connection, for whichever database the suite runs on.
"""

from __future__ import annotations

import pytest
from tortoise import connections

TREE = """{ accounts { id name
  twoFactorEnforcement { enforced enforcedHere source { id name } } sites { id name }
  children { id name twoFactorEnforcement { enforced source { id name } } sites { id name }
    children { id name twoFactorEnforcement { enforced source { id name } } sites { id name } } } } }"""
FLAT = "{ accounts { id descendants { id name parent { id } twoFactorEnforcement { enforced } sites { id } } } }"


@pytest.fixture
def statements(monkeypatch):
    """A list that every SQL statement sent from here on is appended to."""
    sent: list[str] = []
    client = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(client, name)

        async def counted(self, query, *args, _original=original, **kwargs):
            sent.append(query)
            return await _original(self, query, *args, **kwargs)

        monkeypatch.setattr(client, name, counted)
    return sent


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


@pytest.mark.parametrize("practices, clinics", [(3, 2), (20, 9)], ids=["10-accounts", "201-accounts"])
async def test_the_tree_document_costs_ten_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # session + who must use 2FA + the caller's roles and sites (2) + the tops with their
    # ancestors + sites and children per level (2 x 2) + the last level's sites
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, TREE, token) == 10


@pytest.mark.parametrize("practices, clinics", [(3, 2), (20, 9)], ids=["10-accounts", "201-accounts"])
async def test_the_flat_tree_document_costs_eight_statements_whatever_the_trees_size(api, seed, statements, practices, clinics):
    # session + who must use 2FA + roles and sites (2) + tops + the subtree (one recursive CTE)
    # + every descendant's parent view (one batch) + every descendant's sites (one batch)
    await seed(organisation(practices, clinics))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, FLAT, token) == 8


async def test_a_request_of_an_enrolled_user_authenticates_in_one_statement(api, seed, statements):
    await seed(organisation(1, 1))
    login = await api.enrol((await api.login_token("grace@example.org"))[1])
    assert await cost(api, statements, "{ me { id } }", login.token) == 1


async def test_who_must_use_two_factor_is_one_statement_whatever_the_trees_size(api, seed, statements):
    await seed(organisation(20, 9))
    _, token = await api.login_token("grace@example.org")
    assert await cost(api, statements, "{ me { id } }", token) == 2  # the session, the rule
