"""Text PostgreSQL cannot store (U+0000, lone surrogates) is BAD_USER_INPUT before anything runs,
for every String and ID argument of the schema, as a variable or as a literal, on both databases;
and the CLI refuses it in every text it takes, writing nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from mandate.models.tables import AuditEvent, Session, Throttle
from tests.support.api import Api

NUL = "ann\u0000@example.org"
SURROGATE = "ann\ud800@example.org"
ANN = "ann@example.org"

INTROSPECT = """{ __schema { queryType { name } mutationType { name } types { name kind enumValues { name }
  fields { name args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


def _named(ref: dict) -> dict:
    while ref.get("ofType"):
        ref = ref["ofType"]
    return ref


def _spelled(ref: dict) -> str:
    if ref["kind"] == "NON_NULL":
        return _spelled(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{_spelled(ref['ofType'])}]"
    return ref["name"]


def _filler(ref: dict, enums: dict[str, list[str]]) -> str:
    """A literal of the argument's type that is storable: the refusal must be the NUL's."""
    named, listed = _named(ref), "LIST" in json.dumps(ref)
    value = {"Boolean": "true", "Int": "1", "String": '"ok"', "ID": '"VXNlcjox"'}.get(named["name"])
    if named["kind"] == "ENUM":
        value = enums[named["name"]][0]
    assert value is not None, f"no filler for {named}"
    return f"[{value}]" if listed else value


@dataclass(frozen=True)
class Target:
    operation: str      # query or mutation
    path: tuple         # ((field, its arguments' literal) ...) from the root down to the field's parent
    field: str
    arguments: dict     # name -> type reference
    selects: str        # what to select of the field's value


def enum_values(schema: dict) -> dict[str, list[str]]:
    return {t["name"]: [v["name"] for v in t["enumValues"]] for t in schema["types"] if t["kind"] == "ENUM"}


def _targets(schema: dict) -> list[Target]:
    """Every field with a String or ID argument, reached from Query or Mutation through fields
    that return objects (each type entered once, by the shortest path)."""
    types = {t["name"]: t for t in schema["types"]}
    enums = enum_values(schema)
    found, seen = [], set()
    roots = [("query", schema["queryType"]["name"]), ("mutation", schema["mutationType"]["name"])]
    queue = [(operation, name, ()) for operation, name in roots]
    while queue:
        operation, type_name, path = queue.pop(0)
        if (operation, type_name) in seen or type_name.startswith("__"):
            continue
        seen.add((operation, type_name))
        for field in types[type_name]["fields"] or []:
            named = _named(field["type"])
            selects = "" if named["kind"] in ("SCALAR", "ENUM") else "{ __typename }"
            arguments = {a["name"]: a["type"] for a in field["args"]}
            if any(_named(t)["name"] in ("String", "ID") for t in arguments.values()):
                found.append(Target(operation, path, field["name"], arguments, selects))
            if named["kind"] in ("OBJECT", "INTERFACE") and operation == "query":
                filled = ", ".join(f"{n}: {_filler(t, enums)}" for n, t in arguments.items() if t["kind"] == "NON_NULL")
                queue.append((operation, named["name"], (*path, (field["name"], filled))))
    return found


def _document(target: Target, nul_argument: str, as_variable: bool, enums: dict[str, list[str]]) -> tuple[str, dict | None]:
    arguments = []
    for name, ref in target.arguments.items():
        if name == nul_argument:
            arguments.append(f"{name}: $v" if as_variable else f'{name}: "ann\\u0000@example.org"')
        elif ref["kind"] == "NON_NULL":
            arguments.append(f"{name}: {_filler(ref, enums)}")
    inner = f"{target.field}({', '.join(arguments)}) {target.selects}"
    for field, filled in reversed(target.path):
        inner = f"{field}{f'({filled})' if filled else ''} {{ {inner} }}"
    declared = f"($v: {_spelled(target.arguments[nul_argument])})" if as_variable else ""
    return f"{target.operation} Sweep{declared} {{ {inner} }}", ({"v": NUL} if as_variable else None)


async def _full_session(api: Api, seed) -> str:
    await seed({"users": [{"email": ANN}], "accounts": [{"name": "Clinic", "managers": [ANN]}]})
    _, token = await api.login_token(ANN)
    return token


async def test_every_string_and_id_argument_refuses_nul_as_variable_and_literal(api, seed):
    token = await _full_session(api, seed)
    introspected = await api.gql(INTROSPECT, token=token)
    assert not introspected.errors, introspected.body
    targets = _targets(introspected.data["__schema"])
    names = {t.field for t in targets}
    assert {"login", "verifyTwoFactor", "account", "node", "setEnforcement", "auditEvents"} <= names, names
    writes_before = await AuditEvent.all().count(), await Session.all().count(), await Throttle.all().count()
    answers = {}
    for target in targets:
        for argument, ref in target.arguments.items():
            if _named(ref)["name"] not in ("String", "ID"):
                continue
            for as_variable in (True, False):
                query, variables = _document(target, argument, as_variable, enum_values(introspected.data["__schema"]))
                result = await api.gql(query, variables, token=token)
                answers[(target.field, argument, "variable" if as_variable else "literal")] = (
                    result.status, result.codes, result.errors[0]["extensions"].get("argument") if result.errors else None,
                )
    wrong = {k: v for k, v in answers.items() if v[:2] != (200, ["BAD_USER_INPUT"])}
    assert not wrong, wrong
    # The variable's name or the argument's is named; nothing was written by any of them.
    assert all(v[2] in (k[1], "v") for k, v in answers.items()), answers
    assert (await AuditEvent.all().count(), await Session.all().count(), await Throttle.all().count()) == writes_before


async def test_login_with_a_nul_in_the_email_is_bad_user_input_and_spends_nothing(api, seed):
    """PostgreSQL answered INTERNAL_SERVER_ERROR here (SQLite INVALID_CREDENTIALS): issue 12."""
    await seed({"users": [{"email": ANN}]})
    by_variable = await api.login(NUL)
    by_literal = await api.gql('mutation { login(email: "ann\\u0000@example.org", password: "password-123") { token } }')
    assert (by_variable.code, by_literal.code) == ("BAD_USER_INPUT", "BAD_USER_INPUT")
    assert by_variable.errors[0]["extensions"]["argument"] == "e"
    assert by_literal.errors[0]["extensions"]["argument"] == "email"
    assert by_variable.data is None and by_literal.data is None
    assert await Throttle.all().count() == 0 and await Session.all().count() == 0


@pytest.mark.parametrize("spelled", ["\u0000", '"ann\\u{0}@example.org"', '"""ann\u0000@example.org"""'],
                         ids=["raw-nul", "braced-escape", "block-string"])
async def test_every_spelling_of_nul_in_a_literal_is_bad_user_input(api, seed, spelled):
    """GraphQL's lexer takes a NUL as such (JSON's "\\u0000" in the query), as \\u{0}, and in a
    block string."""
    await seed({"users": [{"email": ANN}]})
    literal = '"ann\u0000@example.org"' if spelled == "\u0000" else spelled
    result = await api.gql(f'mutation {{ login(email: {literal}, password: "password-123") {{ token }} }}')
    assert result.code == "BAD_USER_INPUT", result.body
    assert result.errors[0]["extensions"]["argument"] == "email"
    assert await Throttle.all().count() == 0


async def test_a_lone_surrogate_never_gets_past_the_json_or_the_parser(api, seed):
    """A request cannot carry one: JSON's "\\ud800" is not UTF-8 (BAD_REQUEST) and GraphQL's
    string literal refuses it (GRAPHQL_PARSE_FAILED). The CLI can, and refuses it below."""
    await seed({"users": [{"email": ANN}]})
    body = json.dumps({"query": "mutation($e: String!) { login(email: $e, password: \"x\") { token } }",
                       "variables": {"e": SURROGATE}})
    response = await api.client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    literal = await api.gql('mutation { login(email: "ann\\ud800@example.org", password: "x") { token } }')
    assert (response.status_code, response.json()["errors"][0]["extensions"]["code"]) == (400, "BAD_REQUEST")
    assert literal.code == "GRAPHQL_PARSE_FAILED"
    assert await Throttle.all().count() == 0


async def test_unstorable_text_in_a_nested_input_or_a_key_is_refused_too(api, seed):
    """Variables are checked whole, whatever their shape: a list element, an object's key."""
    await seed({"users": [{"email": ANN}]})
    result = await api.gql("mutation($e: String!) { login(email: $e, password: \"password-123\") { token } }",
                           {"e": ANN, "extra": {"k\u0000": ["fine", "bad\u0000"]}})
    assert result.code == "BAD_USER_INPUT", result.body
    assert await Session.all().count() == 0
