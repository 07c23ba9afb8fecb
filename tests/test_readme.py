"""The README's GraphQL documents are real: each one parses and validates against the schema."""

import pytest
from graphql import DocumentNode, OperationDefinitionNode, parse, validate

from mandate.gql.schema import build_schema
from tests.support.readme import BLOCKS


def test_readme_has_the_walkthrough_documents():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_document_validates_against_the_schema(block):
    schema = build_schema()._schema
    for definition in parse(block).definitions:
        assert isinstance(definition, OperationDefinitionNode)
        errors = validate(schema, DocumentNode(definitions=(definition,)))
        assert not errors, f"{errors} in:\n{block}"
