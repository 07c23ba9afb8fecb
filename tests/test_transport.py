"""The HTTP transport (API.md "Transport"): JSON by POST only, the playground on a browser's GET,
the body cap, /healthz, and how errors are coded and kept free of internals.

`client_with_settings` (a fresh app under changed settings) is shared with the schema tests.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

import httpx
import pytest

from mandate.models.tables import Session, Throttle
from tests.support.api import INTERNALS, client_with_settings

EMAIL = "ann@example.org"
LOGIN = 'mutation { login(email: "ann@example.org", password: "password-123") { status token } }'
LOGIN_WITH_VARIABLES = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { status } }"
DEFAULT_MAX_BODY_BYTES = 262144
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def ann(seed):
    await seed({"users": [{"email": EMAIL}], "accounts": [{"name": "North", "managers": [EMAIL]}]})


def assert_refused(response: httpx.Response, status: int | None = None) -> None:
    """A 4xx with a JSON body whose one error is BAD_REQUEST, and no data."""
    assert 400 <= response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"], body
    assert body.get("data") is None, body


async def sessions() -> int:
    return await Session.all().count()


# Requests that carry the login mutation in each refused way.
OTHER_CONTENT_TYPES = {
    "text/plain": {"content": json.dumps({"query": LOGIN}), "headers": {"Content-Type": "text/plain"}},
    "form-urlencoded": {"data": {"query": LOGIN}},
    "multipart": {"files": {"query": (None, LOGIN)}},
    "application/graphql": {"content": LOGIN, "headers": {"Content-Type": "application/graphql"}},
    "none": {"content": json.dumps({"query": LOGIN})},
}


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_post_with_json_runs_the_operation(client, ann, content_type):
    response = await client.post(
        "/graphql", content=json.dumps({"query": LOGIN}), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["login"]["status"] == "AUTHENTICATED"
    assert await sessions() == 1


@pytest.mark.parametrize("kind", OTHER_CONTENT_TYPES)
async def test_other_content_types_are_refused_and_nothing_runs(client, ann, kind):
    response = await client.post("/graphql", **OTHER_CONTENT_TYPES[kind])
    if kind == "none":
        assert "content-type" not in response.request.headers
    assert_refused(response)
    assert await sessions() == 0


async def test_get_with_a_query_never_executes(client, ann):
    response = await client.get("/graphql", params={"query": "{ __typename }"})
    assert_refused(response)


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/html"])
async def test_a_mutation_by_link_does_nothing(client, ann, accept):
    response = await client.get("/graphql", params={"query": LOGIN}, headers={"Accept": accept})
    if accept != "text/html":  # a browser gets the playground page instead
        assert_refused(response)
    assert await sessions() == 0


async def test_wrong_passwords_by_link_do_not_move_the_throttle(client, ann):
    wrong = LOGIN.replace("password-123", "wrong-password")
    for _ in range(3):
        await client.get("/graphql", params={"query": wrong})
        await client.post("/graphql", content=json.dumps({"query": wrong}), headers={"Content-Type": "text/plain"})
    assert await Throttle.filter(failures__gt=0).count() == 0


async def test_a_browser_get_serves_the_playground(client):
    response = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()


async def test_the_playground_loads_nothing_from_another_origin(client):
    page = (await client.get("/graphql", headers={"Accept": "text/html"})).text
    hosts = {urlsplit(url).hostname for url in re.findall(r"https?://[^\s\"'<>)]+", page)}
    # XML namespace names are identifiers, never fetched.
    assert hosts - {"testserver", "www.w3.org"} == set(), hosts
    for tag, attribute in re.findall(r"<(script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", page):
        assert not re.match(r"(?:https?:)?//", attribute), f"<{tag}> loads {attribute}"


async def test_the_playground_is_not_served_when_switched_off(monkeypatch):
    async with client_with_settings(monkeypatch, MANDATE_PLAYGROUND="0") as http:
        response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert not response.headers["content-type"].startswith("text/html")
    assert_refused(response)


async def test_batched_requests_are_refused(client, ann):
    response = await client.post("/graphql", json=[{"query": LOGIN}, {"query": LOGIN}])
    assert_refused(response, 400)
    assert await sessions() == 0


async def test_invalid_json_is_refused(client):
    response = await client.post("/graphql", content=b'{"query": "{ me { id } }"', headers=JSON)
    assert_refused(response, 400)


def padded_login(size: int) -> bytes:
    """A JSON body of exactly `size` bytes carrying the login mutation (padded with a comment)."""
    body = json.dumps({"query": LOGIN + "\n#"}).encode()
    return body[:-2] + b"x" * (size - len(body)) + body[-2:]


async def test_a_body_over_the_default_cap_is_refused(client, ann):
    response = await client.post(
        "/graphql", content=padded_login(DEFAULT_MAX_BODY_BYTES + 1), headers=JSON
    )
    assert_refused(response, 413)
    assert await sessions() == 0


async def test_the_body_cap_is_a_setting(monkeypatch, ann):
    async with client_with_settings(monkeypatch, MANDATE_MAX_BODY_BYTES="2048") as http:
        over = await http.post("/graphql", content=padded_login(2049), headers=JSON)
        at_cap = await http.post("/graphql", content=padded_login(2048), headers=JSON)
    assert_refused(over, 413)
    assert at_cap.json()["data"]["login"]["status"] == "AUTHENTICATED"
    assert await sessions() == 1


async def test_a_body_over_the_cap_is_refused_without_content_length(client, ann):
    async def chunks():
        body = padded_login(DEFAULT_MAX_BODY_BYTES + 1)
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    response = await client.post("/graphql", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_refused(response, 413)
    assert await sessions() == 0


@pytest.mark.parametrize("variables", [["ann"], "ann", 5, True])
async def test_variables_must_be_an_object(client, ann, variables):
    response = await client.post("/graphql", json={"query": LOGIN_WITH_VARIABLES, "variables": variables})
    assert_refused(response, 400)
    assert await sessions() == 0


async def test_healthz_answers_ok(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# Errors: codes for programs, and nothing of the server's insides.

async def test_a_syntax_error_is_graphql_parse_failed(api):
    result = await api.gql("{ me { id }")
    assert result.code == "GRAPHQL_PARSE_FAILED"
    assert result.data is None


async def test_an_unknown_field_is_graphql_validation_failed(api):
    result = await api.gql("{ me { id shoeSize } }")
    assert result.code == "GRAPHQL_VALIDATION_FAILED"
    assert result.data is None


async def test_a_missing_variable_is_bad_user_input(api, ann):
    result = await api.gql(LOGIN_WITH_VARIABLES, {"e": EMAIL})
    assert result.code == "BAD_USER_INPUT"
    assert result.data is None
    assert await sessions() == 0


async def test_a_wrongly_typed_variable_is_bad_user_input(api, ann):
    result = await api.gql(LOGIN_WITH_VARIABLES, {"e": EMAIL, "p": 123})
    assert result.code == "BAD_USER_INPUT"
    assert result.data is None
    assert await sessions() == 0


@pytest.mark.parametrize(
    "query", ['{ account(id: "not-an-id") { id } }', '{ node(id: "not-an-id") { id } }'], ids=["account", "node"]
)
async def test_a_malformed_id_is_bad_user_input(api, ann, query):
    _, token = await api.login_token(EMAIL)
    result = await api.gql(query, token=token)
    assert result.code == "BAD_USER_INPUT"
    assert no_data(result.data)


def no_data(data: dict | None) -> bool:
    return data is None or all(value is None for value in data.values())


# Ids that decode (base64 of "Account:<digits>") but name no row: the largest overflows a
# PostgreSQL integer, which must not surface as a database error.
HUGE_ACCOUNT_ID = base64.b64encode(b"Account:" + b"9" * 18).decode()
LEAKY_REQUESTS = [
    "{ me { id }",
    "{ me { id shoeSize } }",
    '{ account(id: "not-an-id") { id } }',
    f'{{ account(id: "{HUGE_ACCOUNT_ID}") {{ id name }} }}',
    f'{{ node(id: "{HUGE_ACCOUNT_ID}") {{ id }} }}',
    f'mutation {{ setEnforcement(accountId: "{HUGE_ACCOUNT_ID}", enforced: true) {{ id }} }}',
    "query($id: ID!) { account(id: $id) { id } }",
    '{ accounts { auditEvents(first: -1) { edges { node { action } } } } }',
    '{ accounts { auditEvents(first: 10, after: "\'; DROP TABLE users; --") { edges { node { action } } } } }',
    '{ accounts { auditEvents(first: 10, after: "bm90LWEtY3Vyc29y") { edges { node { action } } } } }',
    f'{{ account(id: "{base64.b64encode(b"Site:1").decode()}") {{ id }} }}',
    f'mutation {{ login(email: "{"a" * 400}@example.org", password: "wrong") {{ status }} }}',
]
async def test_no_error_carries_a_trace_or_sql(api, ann):
    _, token = await api.login_token(EMAIL)
    errors = []
    for query in LEAKY_REQUESTS:
        result = await api.gql(query, token=token)
        assert result.status < 500 and result.errors, (query, result.body)
        errors += result.errors
    leaks = [e for e in errors if INTERNALS.search(json.dumps(e))]
    assert leaks == [], leaks


@pytest.mark.parametrize(
    "query", [f'{{ account(id: "{HUGE_ACCOUNT_ID}") {{ id }} }}', f'{{ node(id: "{HUGE_ACCOUNT_ID}") {{ id }} }}'],
    ids=["account", "node"],
)
async def test_a_well_formed_id_of_no_row_is_not_found_whatever_its_size(api, ann, query):
    _, token = await api.login_token(EMAIL)
    result = await api.gql(query, token=token)
    assert result.code == "NOT_FOUND"
    assert no_data(result.data)


@pytest.mark.parametrize(
    ("query", "name"),
    [("{ me { email } }", "Login"), ("{ me { email } }", ""), ("fragment F on User { id }", None),
     ("query A { me { id } } query B { me { email } }", None)],
    ids=["unknown-name", "empty-name", "no-operation", "two-operations-no-name"],
)
async def test_an_operation_the_document_does_not_define_is_a_clear_error(api, query, name):
    result = await api.gql(query, operation_name=name)
    assert result.status == 400
    assert result.code == "BAD_REQUEST"
    assert result.data is None


async def test_a_variable_the_document_misuses_is_a_validation_failure_not_bad_input(api):
    # The value a caller sends is input; a document declaring a variable it never uses is not.
    result = await api.gql("query($r: Int) { me { id } }")
    assert result.code == "GRAPHQL_VALIDATION_FAILED"
