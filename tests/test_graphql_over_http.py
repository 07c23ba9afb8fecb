"""GraphQL over HTTP (issue 12, item 8): a request that never ran has no `data` entry, with
either media type; `Accept: application/graphql-response+json` is answered in that media type
with the spec's status codes (400 for a request at fault, 200 once execution ran), while
`application/json`, no Accept and `*/*` keep the answers of before (200 for GraphQL errors)."""

from __future__ import annotations

import pytest

GRAPHQL_RESPONSE = "application/graphql-response+json"
GRAPHQL_RESPONSE_TYPE = "application/graphql-response+json; charset=utf-8"
MEDIA_TYPES = {"json": "application/json", "graphql-response": GRAPHQL_RESPONSE}

# Requests whose document never ran, with the code each is answered.
NOT_EXECUTED = {
    "parse": ({"query": "{ me { id }"}, "GRAPHQL_PARSE_FAILED"),
    "validation": ({"query": "{ me { id shoeSize } }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variable-coercion": ({"query": "query($id: ID!) { account(id: $id) { id } }", "variables": {"id": None}},
                          "BAD_USER_INPUT"),
    "missing-variable": ({"query": "query($id: ID!) { account(id: $id) { id } }"}, "BAD_USER_INPUT"),
    "two-attempts": ({"query": 'mutation { a: verifyTwoFactor(code: "123456") { token } '
                               'b: verifyTwoFactor(code: "654321") { token } }'}, "BAD_REQUEST"),
}
# Requests refused before any GraphQL is read, with their status.
REFUSED = {
    "unknown-operation": ({"json": {"query": "{ me { id } }", "operationName": "Other"}}, 400),
    "batch": ({"json": [{"query": "{ me { id } }"}]}, 400),
    "not-json": ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400),
    "no-query": ({"json": {"variables": {}}}, 400),
    **{f"extensions-{kind}": ({"json": {"query": "{ me { id } }", "extensions": value}}, 400)
       for kind, value in {"string": "x", "number": 0, "boolean": False, "list": []}.items()},
    "media-type": ({"content": b"{ me { id } }", "headers": {"Content-Type": "application/graphql"}}, 415),
    "body-cap": ({"json": {"query": "{ me { id } }", "variables": {"pad": "x" * 300_000}}}, 413),
}


async def post(client, accept: str | None, **request):
    headers = {**request.pop("headers", {}), **({"Accept": accept} if accept else {})}
    return await client.post("/graphql", headers=headers, **request)


@pytest.mark.parametrize("media", MEDIA_TYPES)
@pytest.mark.parametrize("kind", NOT_EXECUTED)
async def test_a_request_that_never_ran_has_no_data_entry(client, media, kind):
    body, code = NOT_EXECUTED[kind]
    response = await post(client, MEDIA_TYPES[media], json=body)
    answer = response.json()
    assert "data" not in answer, answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code], answer


@pytest.mark.parametrize("kind", NOT_EXECUTED)
async def test_graphql_response_json_answers_a_request_that_never_ran_400(client, kind):
    response = await post(client, GRAPHQL_RESPONSE, json=NOT_EXECUTED[kind][0])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_TYPE


@pytest.mark.parametrize("accept", ["application/json", None, "*/*", "text/html"])
@pytest.mark.parametrize("kind", NOT_EXECUTED)
async def test_application_json_answers_a_request_that_never_ran_200_as_before(client, kind, accept):
    response = await post(client, accept, json=NOT_EXECUTED[kind][0])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("media", MEDIA_TYPES)
async def test_an_executed_document_with_a_field_error_keeps_its_partial_data_and_200(client, media):
    response = await post(client, MEDIA_TYPES[media], json={"query": '{ __typename account(id: "x") { id } }'})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] == {"__typename": "Query", "account": None}, answer
    assert [e["path"] for e in answer["errors"]] == [["account"]], answer


@pytest.mark.parametrize("media", MEDIA_TYPES)
async def test_an_executed_document_whose_data_is_null_keeps_data_null_and_200(client, media):
    response = await post(client, MEDIA_TYPES[media], json={"query": "{ accounts { id } }"})  # no token
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "data" in answer and answer["data"] is None, answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAUTHENTICATED"], answer


@pytest.mark.parametrize("media", MEDIA_TYPES)
@pytest.mark.parametrize("kind", REFUSED)
async def test_a_refused_request_keeps_its_status_in_either_media_type(client, media, kind):
    request, status = REFUSED[kind]
    response = await post(client, MEDIA_TYPES[media], **{**request})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == (GRAPHQL_RESPONSE_TYPE if media == "graphql-response" else "application/json")
    answer = response.json()
    assert "data" not in answer and [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_REQUEST"], answer


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE_TYPE),
        (f"{GRAPHQL_RESPONSE}, application/json", GRAPHQL_RESPONSE_TYPE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE_TYPE),  # equal: the spec's own
        (f"application/json;q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE_TYPE),
        (f"*/*, {GRAPHQL_RESPONSE};q=0.8", "application/json"),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=0, application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE.upper()};Q=1", GRAPHQL_RESPONSE_TYPE),
        (f"{GRAPHQL_RESPONSE};q=oops, application/json", "application/json"),
        ("application/*", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (None, "application/json"),
    ],
)
async def test_the_answer_takes_the_media_type_accept_prefers(client, accept, media_type):
    for _ in range(2):  # the second is answered by the response cache's lane
        response = await post(client, accept, json={"query": "{ __typename }"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media_type
        assert response.json() == {"data": {"__typename": "Query"}}
