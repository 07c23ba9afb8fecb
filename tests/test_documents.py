"""A request's document is parsed once, whoever reads it (the operation's type before execution,
strawberry's execution, the request log), within one token limit, whatever becomes of it."""

from __future__ import annotations

import itertools
import logging

import pytest
from graphql.language.parser import Parser

from mandate.logs import REQUEST_LOGGER
from tests.support.api import Api

EMAIL = "ann@example.org"
_unique = itertools.count()


@pytest.fixture
async def token(api: Api, seed) -> str:
    await seed({"users": [{"email": EMAIL}]})
    return (await api.login_token(EMAIL))[1]


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The text of every document graphql-core parses, whoever asks (every parse goes through
    Parser.parse_document)."""
    seen: list[str] = []
    original = Parser.parse_document

    def counted(self):
        seen.append(self._lexer.source.body)
        return original(self)

    monkeypatch.setattr(Parser, "parse_document", counted)
    return seen


@pytest.fixture
def logged(caplog) -> list[dict]:
    """The request log's lines (the log computes each request's operation from its document)."""
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)

    class Lines(list):
        def __call__(self) -> list[dict]:
            return [r.fields for r in caplog.records if r.name == REQUEST_LOGGER]

    return Lines()


def fresh(query: str) -> str:
    """The query as a text no request has sent yet (parsed documents are kept by their text)."""
    return f"# {next(_unique)} {id(query)}\n{query}"


CASES = {
    "answered": ("{ me { email } }", None, "me"),
    "answered, with fragments": ("query Mine { ...Me } fragment Me on Query { me { email } accounts { id } }", None,
                                 "accounts+me"),
    "refused at validation": ("{ me { nope } }", "GRAPHQL_VALIDATION_FAILED", "invalid"),
    "refused before running": (
        'mutation { a: verifyTwoFactor(code: "000000") { status } b: verifyTwoFactor(code: "111111") { status } }',
        "BAD_REQUEST", "invalid",
    ),
    "a syntax error": ("{ me { email }", "GRAPHQL_PARSE_FAILED", "invalid"),
    "over the token limit": ("{ me { email } }\n" + "# padding\n" * 5000, "GRAPHQL_PARSE_FAILED", "invalid"),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_request_parses_its_document_once(api, token, parses, logged, case):
    query, code, operation = CASES[case]
    query = fresh(query)
    result = await api.gql(query, token=token)
    assert [error["extensions"]["code"] for error in result.errors] == ([code] if code else []), result.body
    assert parses.count(query) == 1
    assert [line["operation"] for line in logged()] == [operation]


async def test_a_document_sent_again_is_not_parsed_again(api, token, parses):
    query = fresh("{ me { email } }")
    for _ in range(3):
        assert (await api.gql(query, token=token)).data == {"me": {"email": EMAIL}}
    assert parses.count(query) == 1
