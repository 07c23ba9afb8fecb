"""A request's document, parsed once, with one token limit, wherever it is read.

`parsed(query)` is the only parse of a document: for the operation's type before execution
(gql/validation.py), for strawberry's execution (`ParsedOnce`, first of the schema's extensions),
and for the operation's name in the log and the metrics (gql/observability.py). Past MAX_TOKENS,
or on a syntax error, every reader gets the same GraphQLSyntaxError (GRAPHQL_PARSE_FAILED).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from strawberry.extensions import SchemaExtension

MAX_TOKENS = 5000


@lru_cache(maxsize=256)
def _parse(query: str) -> DocumentNode | GraphQLSyntaxError:
    # A refusal is kept too, so that a document that does not parse is not parsed again.
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        return error


def parsed(query: str) -> DocumentNode:
    """The document of this text (shared: never change it), or its GraphQLSyntaxError."""
    document = _parse(query)
    if isinstance(document, GraphQLSyntaxError):
        # A fresh error each time: a kept one raised again would grow its traceback.
        raise GraphQLSyntaxError(document.source, document.positions[0], document.description)
    return document


class ParsedOnce(SchemaExtension):
    """Gives strawberry's execution the document `parsed` made, as strawberry's ParserCache does."""

    def on_parse(self) -> Iterator[None]:
        self.execution_context.graphql_document = parsed(self.execution_context.query)
        yield


def root_field_counts(document: DocumentNode, operations: list[OperationDefinitionNode]) -> Counter[str]:
    """How many times these operations select each root field, through aliases, inline
    fragments and fragment spreads (a fragment spread twice counts twice).

    Each fragment is walked once, however often it is spread: fragments that spread the next
    one twice, level after level, select a field 2**levels times in a few hundred tokens."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walked: dict[str, Counter[str]] = {}

    def counts(selection_set: SelectionSetNode | None) -> Iterator[Counter[str]]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield Counter((selection.name.value,))
            elif isinstance(selection, InlineFragmentNode):
                yield from counts(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                yield fragment(selection.name.value)

    def fragment(name: str) -> Counter[str]:
        if name not in walked:
            walked[name] = Counter()  # while walked: a spread inside itself is another rule's error
            if name in fragments:
                walked[name] = sum(counts(fragments[name].selection_set), Counter())
        return walked[name]

    return sum((count for operation in operations for count in counts(operation.selection_set)), Counter())
