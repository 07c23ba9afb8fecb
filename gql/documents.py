"""A request's document, parsed once, with one token limit, wherever it is read.

`parsed(query)` is the only parse of a document: for the operation's type before execution
(gql/validation.py), for strawberry's execution (`ParsedOnce`, first of the schema's extensions),
and for the operation's name in the log and the metrics (gql/observability.py). Past MAX_TOKENS,
or on a syntax error, every reader gets the same GraphQLSyntaxError (GRAPHQL_PARSE_FAILED).

`SelectionFold` is the one walk over a document's selections for the rules that count through
fragments (root fields here, depth and aliases in gql/limits.py): each fragment walked once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from typing import Generic, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    parse,
)
from strawberry.extensions import SchemaExtension

MAX_TOKENS = 5000
T = TypeVar("T")


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


class SelectionFold(Generic[T]):
    """A value worked out bottom-up over a document's selections, each fragment's once however
    often it is spread: fragments that spread the next one twice, level after level, have 2**levels
    paths in a few hundred tokens. Walked with a stack of its own, not recursion, since a chain of
    fragments may be as long as the token limit allows. A spread of an unknown fragment, or of one
    inside itself, adds nothing (KnownFragmentNames' and NoFragmentCycles' errors)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.of_fragment: dict[str, T] = {}

    @staticmethod
    def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
        return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def combine(self, values: list[T]) -> T:
        """The value of a selection set from those of its selections."""
        raise NotImplementedError

    def field(self, node: FieldNode, below: T | None) -> T:
        """The value of a field from its selection set's (None where that was not walked)."""
        raise NotImplementedError

    def walks_into(self, node: FieldNode) -> bool:
        return True

    def enter_fragment(self, definition: FragmentDefinitionNode) -> None:
        """Called once for each fragment walked (the tests count them)."""

    def of(self, selection_set: SelectionSetNode) -> T:
        # Each frame: the node whose selections are walked, those still to walk, the values so far.
        stack: list[tuple[Node, Iterator[SelectionNode], list[T]]] = [(selection_set, iter(selection_set.selections), [])]
        on_path: set[str] = set()
        while True:
            node, selections, values = stack[-1]
            selection = next(selections, None)
            if selection is None:
                stack.pop()
                value = self.combine(values)
                if isinstance(node, FieldNode):
                    value = self.field(node, value)
                elif isinstance(node, FragmentDefinitionNode):
                    self.of_fragment[node.name.value] = value
                    on_path.remove(node.name.value)
                if not stack:
                    return value
                stack[-1][2].append(value)
            elif isinstance(selection, FieldNode):
                if selection.selection_set is not None and self.walks_into(selection):
                    stack.append((selection, iter(selection.selection_set.selections), []))
                else:
                    values.append(self.field(selection, None))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection, iter(selection.selection_set.selections), []))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in self.of_fragment:
                    values.append(self.of_fragment[name])
                elif name in self.fragments and name not in on_path:
                    on_path.add(name)
                    definition = self.fragments[name]
                    self.enter_fragment(definition)
                    stack.append((definition, iter(definition.selection_set.selections), []))


def fields_named(fragments: dict[str, FragmentDefinitionNode], selection_sets: list[SelectionSetNode],
                 name: str) -> list[FieldNode]:
    """The fields of this name the selection sets ask for, directly or through their fragments
    (each fragment once), not below: what a level of a tree will ask of the level under it."""
    found: list[FieldNode] = []
    visited: set[str] = set()
    stack = list(selection_sets)
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                if selection.name.value == name:
                    found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and fragment.name.value not in visited:
                    visited.add(fragment.name.value)
                    stack.append(fragment.selection_set)
    return found


class _RootFieldCounts(SelectionFold[Counter[str]]):
    def __init__(self, document: DocumentNode, names: frozenset[str] | None) -> None:
        super().__init__(SelectionFold.fragments_of(document))
        self.names = names

    def combine(self, values: list[Counter[str]]) -> Counter[str]:
        total: Counter[str] = Counter()
        for value in values:
            total.update(value)
        return total

    def field(self, node: FieldNode, below: Counter[str] | None) -> Counter[str]:
        name = node.name.value
        return Counter((name,)) if self.names is None or name in self.names else Counter()

    def walks_into(self, node: FieldNode) -> bool:
        return False  # root fields only


def root_field_counts(
    document: DocumentNode, operations: list[OperationDefinitionNode], names: frozenset[str] | None = None
) -> Counter[str]:
    """How many times these operations select each root field (of `names`, or every one), through
    aliases, inline fragments and fragment spreads (a fragment spread twice counts twice).

    Only the names asked for are counted: a fragment of a thousand unknown root fields spread a
    thousand times would otherwise add up a million counts."""
    fold = _RootFieldCounts(document, names)
    return fold.combine([fold.of(operation.selection_set) for operation in operations])
