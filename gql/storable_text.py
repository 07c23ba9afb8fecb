"""Every string a request carries, checked against the domain's rule of storable text before any
resolver runs: the variables' values (and keys) and the document's string literals, whatever the
field or argument they are for, so a new field cannot forget it (models/text.py has the rule)."""

from __future__ import annotations

from typing import Any, Iterator

from graphql import BREAK, DocumentNode, Visitor, visit
from strawberry.extensions import SchemaExtension

from mandate.models.text import is_storable, refuse_unstorable, strings_in


class _FirstUnstorableLiteral(Visitor):
    """Finds the first string literal that cannot be stored, and the argument (or variable
    default) it is given to."""

    def __init__(self) -> None:
        super().__init__()
        self.argument: str | None = None
        self.found: str | None = None

    def enter_argument(self, node, *_args):
        self.argument = node.name.value

    def enter_variable_definition(self, node, *_args):
        self.argument = node.variable.name.value

    def enter_string_value(self, node, *_args):
        if not is_storable(node.value):
            self.found = node.value
            return BREAK
        return None


def _may_hold_unstorable(source: str | None) -> bool:
    """Whether the document's literals may: only a NUL as such or a \\u escape spells one (the
    lexer refuses a surrogate's), so most documents skip the walk, a tenth of a millisecond."""
    return source is None or "\x00" in source or "\\u" in source


def refuse_unstorable_request(document: DocumentNode, variables: dict[str, Any] | None, source: str | None = None) -> None:
    for name, value in (variables or {}).items():
        for _, text in strings_in(value):
            refuse_unstorable(text, name)
    if not _may_hold_unstorable(source):
        return
    literals = _FirstUnstorableLiteral()
    visit(document, literals)
    if literals.found is not None:
        refuse_unstorable(literals.found, literals.argument)


class StorableText(SchemaExtension):
    """BAD_USER_INPUT for a request with unstorable text, after validation, before execution."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            refuse_unstorable_request(context.graphql_document, context.variables, context.query)
        yield
