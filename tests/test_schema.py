"""The served schema: schema.graphql kept in step with the code, every name of API.md's fixed
part served with its type, and introspection (API.md "Visibility", last bullet).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    NamedTypeNode,
    TypeDefinitionNode,
    Visitor,
    build_schema as build_sdl,
    get_introspection_query,
    parse,
    specified_scalar_types,
    visit,
)

from mandate.gql.schema import build_schema
from tests.support.api import client_with_settings

ROOT = Path(__file__).parents[1]
API_MD = Path(__file__).parents[2] / "shared" / "API.md"
SCHEMA_FILE = ROOT / "schema.graphql"


@cache
def served() -> GraphQLSchema:
    return build_sdl(build_schema().as_str())


@cache
def _fixed() -> tuple[GraphQLSchema, list[str]] | None:
    if not API_MD.exists():
        return None
    block = re.search(r"```graphql\n(.*?)```", API_MD.read_text(), re.S).group(1)
    # The block names a few types it does not define (DateTime, Node, the audit connection):
    # stub them so graphql-core can build it.
    referenced: set[str] = set()

    class Names(Visitor):
        def enter_named_type(self, node: NamedTypeNode, *_args) -> None:
            referenced.add(node.name.value)

    document = parse(block)
    visit(document, Names())
    own = [d.name.value for d in document.definitions if isinstance(d, TypeDefinitionNode)]
    interfaces = {i.name.value for d in document.definitions for i in getattr(d, "interfaces", None) or ()}
    stubs = "".join(
        f"interface {name} {{ id: ID! }}\n" if name in interfaces else f"scalar {name}\n"
        for name in sorted(referenced - set(own) - set(specified_scalar_types))
    )
    return build_sdl(block + "\n" + stubs), own


def fixed_types() -> list[GraphQLNamedType]:
    """The types API.md's fixed schema block defines (not the stubs), built by graphql-core."""
    fixed = _fixed()
    if fixed is None:
        pytest.skip(f"{API_MD} is not there (CI checks shared/ out beside the clone)")
    schema, names = fixed
    return [schema.type_map[name] for name in names]


def fixed_fields():
    """(type name, field name, API.md's field, our type) for every field of the fixed block."""
    for api_type in fixed_types():
        if isinstance(api_type, (GraphQLObjectType, GraphQLInterfaceType)):
            ours = served().type_map.get(api_type.name)
            for name, field in api_type.fields.items():
                yield api_type.name, name, field, ours


def test_schema_graphql_is_the_served_schema():
    assert SCHEMA_FILE.read_text() == build_schema().as_str() + "\n", (
        "schema.graphql is out of step with the code: regenerate it with `.venv/bin/python -m mandate.gql`"
    )


def test_every_fixed_type_is_served_with_its_kind():
    wrong = [
        (t.name, type(t).__name__, type(served().type_map.get(t.name)).__name__)
        for t in fixed_types() if type(served().type_map.get(t.name)) is not type(t)
    ]
    assert wrong == [], wrong


def test_every_fixed_field_is_served_with_its_type():
    wrong = []
    for type_name, name, field, ours in fixed_fields():
        our_field = getattr(ours, "fields", {}).get(name)
        if our_field is None or str(our_field.type) != str(field.type):
            wrong.append((f"{type_name}.{name}", str(field.type), our_field and str(our_field.type)))
    assert wrong == [], wrong


def test_every_fixed_argument_is_served_with_its_type_and_default():
    wrong = []
    for type_name, name, field, ours in fixed_fields():
        our_field = getattr(ours, "fields", {}).get(name)
        for arg_name, arg in field.args.items():
            our_arg = our_field.args.get(arg_name) if our_field else None
            where = f"{type_name}.{name}({arg_name})"
            if our_arg is None or str(our_arg.type) != str(arg.type):
                wrong.append((where, str(arg.type), our_arg and str(our_arg.type)))
            elif arg.default_value is not None and our_arg.default_value != arg.default_value:
                wrong.append((where, f"= {arg.default_value}", f"= {our_arg.default_value}"))
    assert wrong == [], wrong


def test_arguments_added_to_fixed_fields_are_optional():
    required = [
        f"{type_name}.{name}({arg_name}: {arg.type})"
        for type_name, name, field, ours in fixed_fields()
        if ours is not None and name in getattr(ours, "fields", {})
        for arg_name, arg in ours.fields[name].args.items()
        if arg_name not in field.args and str(arg.type).endswith("!") and arg.default_value is None
    ]
    assert required == [], required


def test_every_fixed_enum_value_is_served():
    missing = [
        f"{t.name}.{value}"
        for t in fixed_types() if isinstance(t, GraphQLEnumType)
        for value in t.values
        if value not in getattr(served().type_map.get(t.name), "values", {})
    ]
    assert missing == [], missing


def test_fixed_types_implement_their_interfaces():
    missing = [
        (t.name, i.name)
        for t in fixed_types() if isinstance(t, GraphQLObjectType)
        for i in t.interfaces
        if i.name not in {o.name for o in getattr(served().type_map.get(t.name), "interfaces", [])}
    ]
    assert missing == [], missing


# Introspection.

GRAPHQL_CORE_QUERY = get_introspection_query(descriptions=True)
# What GraphiQL asks for, with every option graphql-core offers for it.
GRAPHIQL_QUERY = get_introspection_query(
    descriptions=True, specified_by_url=True, directive_is_repeatable=True, schema_description=True,
    input_value_deprecation=True,
)


def schema_file_type_names() -> set[str]:
    return {d.name.value for d in parse(SCHEMA_FILE.read_text()).definitions if isinstance(d, TypeDefinitionNode)}


@pytest.mark.parametrize("query", [GRAPHQL_CORE_QUERY, GRAPHIQL_QUERY], ids=["graphql-core", "graphiql"])
async def test_the_standard_introspection_query_is_answered(api, query):
    result = await api.gql(query)
    assert result.errors == [], result.errors
    names = {t["name"] for t in result.data["__schema"]["types"]}
    assert schema_file_type_names() - names == set()


async def test_a_pathologically_deep_introspection_query_is_refused(api):
    # The depth limiter skips introspection fields: this nesting must be stopped by another rule.
    query = '{ __type(name: "Account") { ' + "fields { type { ofType { " * 8 + "name" + " } } }" * 8 + " } }"
    result = await api.gql(query)
    assert result.code == "GRAPHQL_VALIDATION_FAILED"
    assert result.data is None


@pytest.mark.parametrize(
    "query", ["{ __schema { types { name } } }", '{ __type(name: "Account") { name } }', GRAPHQL_CORE_QUERY],
    ids=["__schema", "__type", "standard"],
)
async def test_introspection_can_be_switched_off(monkeypatch, query):
    async with client_with_settings(monkeypatch, MANDATE_INTROSPECTION="0") as http:
        refused = (await http.post("/graphql", json={"query": query})).json()
        ordinary = (await http.post("/graphql", json={"query": "{ me { id } }"})).json()
    assert refused.get("data") is None, refused
    assert [e["extensions"]["code"] for e in refused["errors"]][:1] == ["GRAPHQL_VALIDATION_FAILED"], refused
    assert ordinary == {"data": {"me": None}}
