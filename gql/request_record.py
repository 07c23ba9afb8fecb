"""The record of the request in course: what only the GraphQL layer knows, noted for its log line
and its metrics (gql/observability.py writes and counts them once the answer has gone).

The middleware opens a record per request (`RECORD`); the GraphQL layer notes on it, through
`current_request()`: the document and its error codes (`note_execution`), the caller's user id
(gql/context.py), an outcome of its own (gql/failures.py). Outside a request (the command line,
tests calling the domain), notes go nowhere.
"""

from __future__ import annotations

from contextvars import ContextVar

from graphql import GraphQLError

from mandate.gql.errors import format_error


class RequestRecord:
    __slots__ = ("request_id", "operation", "user_id", "outcome", "query", "operation_name", "codes")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.operation: str | None = None   # set here, from what was noted, unless set before
        self.user_id: int | None = None
        self.outcome: str | None = None
        self.query: str | None = None
        self.operation_name: str | None = None
        self.codes: tuple[str, ...] = ()


class _NoRecord:
    """Outside a request (the command line, tests calling the domain): notes go nowhere."""

    __slots__ = ()
    request_id = operation = user_id = outcome = None

    def __setattr__(self, name: str, value: object) -> None:
        pass


_NO_RECORD = _NoRecord()
RECORD: ContextVar[RequestRecord | None] = ContextVar("mandate_request", default=None)  # set by the middleware


def current_request() -> RequestRecord | _NoRecord:
    return RECORD.get() or _NO_RECORD


def note_execution(query: str, operation_name: str | None, errors: list[GraphQLError] | None) -> None:
    """The document that ran and the error codes of its answer, as the client sees them."""
    record = RECORD.get()
    if record is not None:
        record.query, record.operation_name = query, operation_name
        if errors:
            record.codes = tuple(format_error(error)["extensions"]["code"] for error in errors)
