"""The request log: a pure ASGI middleware that logs and counts every request.

It gives each request an id (a sane incoming `X-Request-Id`, else a new one), sends it back in the
`X-Request-Id` response header, opens the request's record (gql/request_record.py) for the GraphQL
layer to note on, and when the answer is sent writes one JSON log line (request id, operation,
user id, outcome, duration; see mandate/logs.py) and counts it for `/metrics` (gql/metrics.py),
which it also serves.

Operations are named by the root fields a document selects (`login`, `accounts+me`), never by a
client's `operationName`: metric labels must come from a bounded set, and the schema bounds them.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from functools import lru_cache

from graphql import GraphQLError, get_operation_ast

from mandate.config import Settings
from mandate.gql.documents import parsed, root_field_counts
from mandate.gql.metrics import OK, count_request, serve_metrics
from mandate.gql.request_record import RECORD as _current
from mandate.gql.request_record import RequestRecord
from mandate.logs import REQUEST_LOGGER
from mandate.models.errors import BAD_REQUEST, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED

request_log = logging.getLogger(REQUEST_LOGGER)
INVALID = "invalid"     # a document refused before it ran: its fields name nothing
_REFUSED_CODES = frozenset({BAD_REQUEST, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED})
_ROUTES = {"/graphql": "graphql", "/healthz": "healthz", "/readyz": "readyz"}
_INCOMING_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")


# -- the operation and outcome of a request --------------------------------------------------------


@lru_cache(maxsize=512)
def operation_label(query: str, operation_name: str | None) -> str:
    """The root fields the operation selects, sorted and joined by '+'."""
    try:
        document = parsed(query)
    except GraphQLError:
        return INVALID
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return INVALID
    return "+".join(sorted(root_field_counts(document, [operation]))) or INVALID


def _label(record: RequestRecord, path: str) -> str:
    if record.operation is not None:
        return record.operation
    if record.query is not None:
        if any(code in _REFUSED_CODES for code in record.codes):
            return INVALID
        return operation_label(record.query, record.operation_name)
    return _ROUTES.get(path, "other")


def _outcome(record: RequestRecord, status: int) -> str:
    if record.outcome is not None:
        return record.outcome
    if record.codes:
        return ",".join(dict.fromkeys(record.codes))
    return OK if status < 400 else f"http_{status}"


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            if _INCOMING_ID.fullmatch(value):
                return value.decode()
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


# Made ids: a random prefix per process and a counter, 16 hex digits like an incoming one; no
# system call per request (os.urandom cost a twentieth of a cached answer's time).
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count()


# -- the middleware --------------------------------------------------------------------------------


class Observability:
    """Pure ASGI: no buffering, no task; the one extra call per message is the header's."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.metrics = settings.metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics and scope["path"] == "/metrics":
            await serve_metrics(scope, send, self.settings)
            return
        started = time.perf_counter()
        record = RequestRecord(_request_id(scope["headers"]))
        header = (b"x-request-id", record.request_id.encode())
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A copy: a response object may be reused (a cached answer), its headers must not grow.
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = _current.set(record)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            self._finish(record, scope, status, time.perf_counter() - started)

    def _finish(self, record: RequestRecord, scope, status: int, seconds: float) -> None:
        logged = request_log.isEnabledFor(logging.INFO)
        if not (logged or self.metrics):
            return
        operation = _label(record, scope["path"])
        outcome = _outcome(record, status)
        if self.metrics:
            count_request(operation, outcome, record.codes, seconds)
        if logged:
            client = scope.get("client")
            fields = {
                "request_id": record.request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "operation": operation,
                "user_id": record.user_id,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
            }
            # makeRecord + handle: the same as .info() without the search for the caller's frame.
            request_log.handle(
                request_log.makeRecord(REQUEST_LOGGER, logging.INFO, __file__, 0, "request", (), None,
                                       extra={"fields": fields})
            )
