"""GraphQL errors as clients see them: a message for people, `extensions.code` for programs."""

from __future__ import annotations

import re

from graphql import GraphQLError, GraphQLSyntaxError

from mandate.config import get_settings
from mandate.models.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    MandateError,
)


# graphql-core ends a validation or coercion message with " Did you mean 'x', 'y', or 'z'?" when
# a name is close to one the schema has (fields, arguments, types, enum values, input fields).
_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)


# A variable's value that does not fit its type is the caller's input; a variable the document
# misuses ("is never used", "is not defined", used where another type is expected) is validation.
_VARIABLE_VALUE = re.compile(
    r"Variable '\$\w+' (has invalid value|got invalid value|of required type .* was not provided|of non-null type .* must not be null)",
    re.DOTALL,
)


def without_suggestions(message: str) -> str:
    """The message without graphql-core's "Did you mean ...?" clause, which tells the schema's
    names to anyone probing with near misses (when introspection is off, too)."""
    return _SUGGESTION.sub("", message)


def is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (MandateError, GraphQLError))


def format_error(error: GraphQLError) -> dict:
    """The error as the client sees it; suggestions of names only in development (MANDATE_ENV)."""
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
            elif _VARIABLE_VALUE.match(error.message):
                extensions["code"] = BAD_USER_INPUT
            else:
                extensions["code"] = GRAPHQL_VALIDATION_FAILED
        if not get_settings().development:
            message = without_suggestions(message)
    formatted: dict = {"message": message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    formatted["extensions"] = extensions
    return formatted
