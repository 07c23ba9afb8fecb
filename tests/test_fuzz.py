"""Fuzzing (issue 3): hypothesis-graphql writes queries and mutations from the served schema
(valid ones, and ones with one schema violation each), with a fixed seed and a bounded budget,
and each is posted through the HTTP app, without a token and with a full session. No answer may
be a 500, carry a trace, SQL or an internal message, or an error code outside API.md's; and the
server still answers afterwards.

Arguments are drawn partly from the seeded world (its ids, emails, a password, code shapes) so
that the documents reach past argument checks into the resolvers.
"""

from __future__ import annotations

import json
import time

import graphql
import pytest
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from mandate.gql.schema import build_schema
from mandate.models import errors
from tests.support.api import Api, INTERNALS, PASSWORD
from tests.support.callers import MANAGER, World, build_world
from tests.support.generated import IDS, examples

SCHEMA = build_schema().as_str()
MUTATION_FIELDS = sorted(graphql.build_schema(SCHEMA).mutation_type.fields)  # type: ignore[union-attr]

# Every code a client may meet: API.md's table, and the transport's and GraphQL's own.
KNOWN_CODES = {
    errors.UNAUTHENTICATED, errors.FORBIDDEN, errors.NOT_FOUND, errors.BAD_USER_INPUT,
    errors.INVALID_CREDENTIALS, errors.INVALID_CODE, errors.RATE_LIMITED, errors.TWO_FACTOR_SETUP_REQUIRED,
    errors.TWO_FACTOR_REQUIRED, errors.ENROLMENT_REQUIRED, errors.TWO_FACTOR_ENFORCED, errors.QUERY_TOO_COMPLEX,
    errors.BAD_REQUEST, errors.GRAPHQL_PARSE_FAILED, errors.GRAPHQL_VALIDATION_FAILED,
}

# Strings a client might send (ids: tests/support/generated.py).
WORLD = World(0)
STRINGS = [
    *(WORLD.email(who) for who in ("north-manager", "north-member", "south-member", "loner")), PASSWORD,
    "123456", "000000", "abcde-fghij-klmno-pqrst", "YXVkaXQ6MQ==", "Account:1", "",
]
SCALARS = {
    "ID": st.one_of(st.sampled_from(IDS), st.text(max_size=30)).map(nodes.String),
    "String": st.one_of(st.sampled_from(STRINGS), st.text(max_size=30)).map(nodes.String),
}

# The budget: (name, strategy, examples, with the manager's full session).
BUDGET = [
    ("queries, full session", queries(SCHEMA, custom_scalars=SCALARS), 90, True),
    # logout would end the session the rest of the run uses; it is fuzzed without a token.
    ("mutations, full session", mutations(SCHEMA, custom_scalars=SCALARS,
                                          fields=[f for f in MUTATION_FIELDS if f != "logout"]), 60, True),
    ("queries, no token", queries(SCHEMA, custom_scalars=SCALARS), 40, False),
    ("mutations, no token", mutations(SCHEMA, custom_scalars=SCALARS), 40, False),
    ("invalid documents, full session", st.one_of(
        queries(SCHEMA, custom_scalars=SCALARS, mode=Mode.NEGATIVE),
        mutations(SCHEMA, custom_scalars=SCALARS, mode=Mode.NEGATIVE)), 50, True),
]


@pytest.fixture(scope="module")
def documents() -> list[tuple[str, str, bool]]:
    """(budget line, document, with a token), generated once for both databases."""
    return [(name, document, token) for name, strategy, count, token in BUDGET
            for document in examples(strategy, count)]


def problems_with(response, document: str) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {document}"]
    body = response.json()
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        return [f"not a GraphQL answer {body!r}: {document}"]
    found = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in KNOWN_CODES:
            found.append(f"code {code!r} ({error.get('message')}): {document}")
        if INTERNALS.search(json.dumps(error)):
            found.append(f"internals in {error}: {document}")
    return found


async def test_fuzzed_documents_get_coded_answers_and_the_server_stays_healthy(api: Api, seed, clock, documents):
    world = await build_world(api, seed, clock, 0)
    await seed({"users": [{"email": "canary@example.org"}]})
    token = world.callers[MANAGER].token
    started = time.perf_counter()
    problems = []
    for _, document, with_token in documents:
        headers = {"Authorization": f"Bearer {token}"} if with_token else {}
        response = await api.client.post("/graphql", json={"query": document}, headers=headers)
        problems += problems_with(response, document)
    elapsed = time.perf_counter() - started
    assert problems == [], problems[:10]
    assert len(documents) >= 200, len(documents)  # hypothesis may stop early on a small search space
    print(f"fuzz: {len(documents)} documents in {elapsed:.1f} s")

    health = await api.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    _, canary = await api.login_token("canary@example.org")
    r = await api.gql("{ me { email } accounts { name } }", token=canary)
    assert r.errors == [] and r.data == {"me": {"email": "canary@example.org"}, "accounts": []}, r.body
