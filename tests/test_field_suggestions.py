"""Field suggestions (issue 3, "Transport"): graphql-core answers a near miss with "Did you mean
...?", naming the schema's fields, arguments and types. Kept in development (MANDATE_ENV's
default) for people writing queries; in production the clause is dropped, so probing cannot map
a schema whose introspection is off. The error keeps its code and the rest of its message."""

from __future__ import annotations

import pytest

from tests.support.api import client_with_settings

# (document, what graphql-core suggests for it)
NEAR_MISSES = {
    "field": ("{ me { emial } }", "email"),
    "argument": ('mutation { setEnforcement(accountId: "QWNjb3VudDox", enforced: true, enforcd: true) { id } }',
                 "enforced"),
    "fragment type": ("{ me { ... on Usr { id } } }", "User"),
    "variable type": ("query($r: Rol) { account(id: $r) { id } }", "Role"),
    "selection": ("{ me }", "me { ... }"),
}


async def messages(monkeypatch, document: str, **env: str) -> list[dict]:
    async with client_with_settings(monkeypatch, MANDATE_INTROSPECTION="0", **env) as http:
        response = await http.post("/graphql", json={"query": document})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"], body
    return body["errors"]


@pytest.mark.parametrize("case", sorted(NEAR_MISSES))
@pytest.mark.parametrize("env", [{}, {"MANDATE_ENV": "development"}], ids=["default", "development"])
async def test_development_suggests_the_names_it_knows(monkeypatch, case, env):
    document, suggested = NEAR_MISSES[case]
    [error] = await messages(monkeypatch, document, **env)
    assert "Did you mean" in error["message"] and f"'{suggested}'" in error["message"], error


@pytest.mark.parametrize("case", sorted(NEAR_MISSES))
async def test_production_suggests_nothing(monkeypatch, case):
    document, suggested = NEAR_MISSES[case]
    [error] = await messages(monkeypatch, document, MANDATE_ENV="production")
    [in_development] = await messages(monkeypatch, document, MANDATE_ENV="development")
    assert "Did you mean" not in error["message"] and f"'{suggested}'" not in error["message"], error
    # The same error otherwise: what was wrong, and where.
    assert in_development["message"].startswith(error["message"]) and error["message"].endswith("."), error
    assert error["locations"] == in_development["locations"]
