"""One second-factor attempt and one login per document, refused before anything runs.

Counted over the whole document, through aliases and fragment spreads, so that neither
`a: verifyTwoFactor(...) b: verifyTwoFactor(...)` nor a fragment spread twice multiplies guesses.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    get_operation_ast,
    parse,
)

MAX_TOKENS = 5000  # as the schema's MaxTokensLimiter: past it, the schema words the refusal

UNPARSED = object()  # a document that does not parse: the schema reports its syntax error


@lru_cache(maxsize=256)
def selected_operation(document: str, operation_name: str | None) -> OperationType | None | object:
    """The type of the operation a request runs, None when the document names no such operation
    (an unknown name, two operations and no name, only fragments), or UNPARSED."""
    try:
        operation = get_operation_ast(parse(document, max_tokens=MAX_TOKENS), operation_name)
    except GraphQLError:
        return UNPARSED
    return None if operation is None else operation.operation

SECOND_FACTOR_FIELDS = frozenset({"verifyTwoFactor", "confirmTotp", "disableTotp", "regenerateRecoveryCodes"})
LOGIN_FIELDS = frozenset({"login"})


def _count(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    names: frozenset[str],
    seen: tuple[str, ...] = (),
) -> int:
    total = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            total += selection.name.value in names
        elif isinstance(selection, InlineFragmentNode):
            total += _count(selection.selection_set, fragments, names, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # cycles are another rule's error
                total += _count(fragments[name].selection_set, fragments, names, (*seen, name))
    return total


class OneAttemptPerDocument(ValidationRule):
    def enter_document(self, node: DocumentNode, *_args) -> None:
        fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
        mutations = [
            d for d in node.definitions
            if isinstance(d, OperationDefinitionNode) and d.operation is OperationType.MUTATION
        ]
        for names, what in ((SECOND_FACTOR_FIELDS, "second-factor attempt"), (LOGIN_FIELDS, "login")):
            if sum(_count(op.selection_set, fragments, names) for op in mutations) > 1:
                self.report_error(
                    GraphQLError(f"A request may carry at most one {what}.", extensions={"code": "BAD_REQUEST"})
                )
