"""One second-factor attempt and one login per document, refused before anything runs.

Counted over the whole document, through aliases and fragment spreads, so that neither
`a: verifyTwoFactor(...) b: verifyTwoFactor(...)` nor a fragment spread twice multiplies guesses.
"""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType, ValidationRule, get_operation_ast

from mandate.gql.documents import parsed, root_field_counts

UNPARSED = object()  # a document that does not parse: the schema reports its syntax error


def selected_operation(document: str, operation_name: str | None) -> OperationType | None | object:
    """The type of the operation a request runs, None when the document names no such operation
    (an unknown name, two operations and no name, only fragments), or UNPARSED."""
    try:
        operation = get_operation_ast(parsed(document), operation_name)
    except GraphQLError:
        return UNPARSED
    return None if operation is None else operation.operation


SECOND_FACTOR_FIELDS = frozenset(
    {"verifyTwoFactor", "confirmTotp", "disableTotp", "regenerateRecoveryCodes", "replaceTotp"}
)
LOGIN_FIELDS = frozenset({"login"})


class OneAttemptPerDocument(ValidationRule):
    def enter_document(self, node: DocumentNode, *_args) -> None:
        mutations = [
            d for d in node.definitions
            if isinstance(d, OperationDefinitionNode) and d.operation is OperationType.MUTATION
        ]
        selected = root_field_counts(node, mutations, SECOND_FACTOR_FIELDS | LOGIN_FIELDS)
        for names, what in ((SECOND_FACTOR_FIELDS, "second-factor attempt"), (LOGIN_FIELDS, "login")):
            if sum(selected[name] for name in names) > 1:
                self.report_error(
                    GraphQLError(f"A request may carry at most one {what}.", extensions={"code": "BAD_REQUEST"})
                )
