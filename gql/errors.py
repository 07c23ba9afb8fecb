"""GraphQL errors as clients see them: a message for people, `extensions.code` for programs."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSyntaxError

from models.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    MandateError,
)


def is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (MandateError, GraphQLError))


def format_error(error: GraphQLError) -> dict:
    original = error.original_error
    if isinstance(original, MandateError):
        message, extensions = original.message, original.extensions
    elif original is not None and not isinstance(original, GraphQLError):
        # Never a stack trace, SQL or internal message: those go to the server's log only.
        message, extensions = "Internal server error.", {"code": INTERNAL_SERVER_ERROR}
    else:
        message = error.message
        extensions = dict(error.extensions or {})
        if "code" not in extensions:
            if isinstance(error, GraphQLSyntaxError):
                extensions["code"] = GRAPHQL_PARSE_FAILED
            elif error.message.startswith("Variable "):
                extensions["code"] = BAD_USER_INPUT
            else:
                extensions["code"] = GRAPHQL_VALIDATION_FAILED
    formatted: dict = {"message": message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    formatted["extensions"] = extensions
    return formatted
