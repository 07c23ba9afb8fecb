"""Logs and metrics of every request: a pure ASGI middleware and a per-request record.

The middleware gives each request an id (a sane incoming `X-Request-Id`, else a new one), sends it
back in the `X-Request-Id` response header, and when the answer is sent writes one JSON log line
(request id, operation, user id, outcome, duration; see mandate/logs.py) and counts it for
`/metrics`. What only the GraphQL layer knows, it notes on the record of the request in course,
`current_request()`: the document and its error codes (`note_execution`), the caller's user id
(gql/context.py).

Operations are named by the root fields a document selects (`login`, `accounts+me`), never by a
client's `operationName`: metric labels must come from a bounded set, and the schema bounds them.

Metrics (prometheus-client) are counted in the process that answered. With several processes
(`mandate serve --workers N`), prometheus-client's multi-process mode adds them up across the
processes: each scrape, whichever process answers it, reports the totals of all of them.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from contextvars import ContextVar
from functools import lru_cache

import orjson
from graphql import FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode, get_operation_ast, parse
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from mandate.gql.errors import format_error
from mandate.config import Settings
from mandate.logs import REQUEST_LOGGER
from mandate.models.errors import (
    BAD_REQUEST,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INVALID_CODE,
    RATE_LIMITED,
)
from mandate.models.sql import fetch

request_log = logging.getLogger(REQUEST_LOGGER)
log = logging.getLogger("mandate.observability")

OK = "ok"
INVALID = "invalid"     # a document refused before it ran: its fields name nothing
_REFUSED_CODES = frozenset({BAD_REQUEST, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED})
_ROUTES = {"/graphql": "graphql", "/healthz": "healthz", "/readyz": "readyz"}
_INCOMING_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")


# -- the record of a request -----------------------------------------------------------------------


class RequestRecord:
    __slots__ = ("request_id", "operation", "user_id", "outcome", "query", "operation_name", "codes", "cached_body")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.operation: str | None = None   # set here, from what was noted, unless set before
        self.user_id: int | None = None
        self.outcome: str | None = None
        self.query: str | None = None
        self.operation_name: str | None = None
        self.codes: tuple[str, ...] = ()
        self.cached_body: bytes | None = None


class _NoRecord:
    """Outside a request (the command line, tests calling the domain): notes go nowhere."""

    __slots__ = ()
    request_id = operation = user_id = outcome = None

    def __setattr__(self, name: str, value: object) -> None:
        pass


_NO_RECORD = _NoRecord()
_current: ContextVar[RequestRecord | None] = ContextVar("mandate_request", default=None)


def current_request() -> RequestRecord | _NoRecord:
    return _current.get() or _NO_RECORD


def note_execution(query: str, operation_name: str | None, errors: list[GraphQLError] | None) -> None:
    """The document that ran and the error codes of its answer, as the client sees them."""
    record = _current.get()
    if record is not None:
        record.query, record.operation_name = query, operation_name
        if errors:
            record.codes = tuple(format_error(error)["extensions"]["code"] for error in errors)


def note_cache_hit(body: bytes, user_id: int | None) -> None:
    """A query answered from the response cache: no errors, and its operation is read from the
    body (only error-free queries are cached, so such bodies are few and hold no password)."""
    record = _current.get()
    if record is not None:
        record.cached_body, record.user_id = body, user_id


@lru_cache(maxsize=512)
def operation_label(query: str, operation_name: str | None) -> str:
    """The root fields the operation selects, sorted and joined by '+'."""
    try:
        document = parse(query, no_location=True, max_tokens=10_000)
    except GraphQLError:
        return INVALID
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return INVALID
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    names: set[str] = set()

    def collect(selection_set, seen: frozenset[str]) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                collect(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    collect(fragments[name].selection_set, seen | {name})

    collect(operation.selection_set, frozenset())
    return "+".join(sorted(names)) or INVALID


@lru_cache(maxsize=512)
def _cached_body_label(body: bytes) -> str:
    try:
        payload = orjson.loads(body)
        return operation_label(payload["query"], payload.get("operationName"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return INVALID


def _label(record: RequestRecord, path: str) -> str:
    if record.operation is not None:
        return record.operation
    if record.query is not None:
        if any(code in _REFUSED_CODES for code in record.codes):
            return INVALID
        return operation_label(record.query, record.operation_name)
    if record.cached_body is not None:
        return _cached_body_label(record.cached_body)
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


# -- metrics ---------------------------------------------------------------------------------------

disable_created_metrics()  # no `_created` series beside every counter: Prometheus does without them
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "mandate_requests", "Requests answered, by operation (root fields) and outcome (ok, or the first error code).",
    ["operation", "outcome"], registry=REGISTRY,
)
LATENCY = Histogram(
    "mandate_request_duration_seconds", "Time from a request's arrival to its answer, by operation.",
    ["operation"], registry=REGISTRY,
)
LOGINS = Counter(
    "mandate_logins", "Documents with a login, by outcome: ok, or the error code (INVALID_CREDENTIALS, RATE_LIMITED...).",
    ["outcome"], registry=REGISTRY,
)
SECOND_FACTOR_FAILURES = Counter(
    "mandate_second_factor_failures", "Second-factor attempts answered INVALID_CODE, by operation.",
    ["operation"], registry=REGISTRY,
)
RATE_LIMITED_ANSWERS = Counter(
    "mandate_rate_limited", "Answers RATE_LIMITED (passwords and second factors), by operation.",
    ["operation"], registry=REGISTRY,
)

# One statement, at scrape time: the same numbers from every process, read from the database.
_ACCOUNTS = """
    WITH RECURSIVE under(id) AS (
        SELECT id FROM accounts WHERE enforced
        UNION
        SELECT a.id FROM accounts a JOIN under ON a.parent_id = under.id
    )
    SELECT (SELECT COUNT(*) FROM accounts) AS accounts,
           (SELECT COUNT(*) FROM under) AS enforced,
           (SELECT COUNT(*) FROM accounts WHERE enforced) AS enforced_here
"""


def _count(operation: str, outcome: str, codes: tuple[str, ...], seconds: float) -> None:
    REQUESTS.labels(operation, outcome.split(",", 1)[0]).inc()
    LATENCY.labels(operation).observe(seconds)
    if not codes:
        if "login" in operation.split("+"):
            LOGINS.labels(OK).inc()
        return
    if "login" in operation.split("+"):
        LOGINS.labels(codes[0]).inc()
    for code in codes:
        if code == INVALID_CODE:
            SECOND_FACTOR_FAILURES.labels(operation).inc()
        elif code == RATE_LIMITED:
            RATE_LIMITED_ANSWERS.labels(operation).inc()


class _Families:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families


async def _account_gauges() -> list[GaugeMetricFamily]:
    try:
        row = (await fetch(_ACCOUNTS))[0]
    except Exception:  # noqa: BLE001 - the counters are still worth serving without the database
        log.exception("metrics: the accounts could not be counted")
        return []
    return [
        GaugeMetricFamily("mandate_accounts", "Accounts.", value=row["accounts"]),
        GaugeMetricFamily(
            "mandate_accounts_enforced", "Accounts under enforcement: switched on there or on an ancestor.",
            value=row["enforced"],
        ),
        GaugeMetricFamily("mandate_accounts_enforced_here", "Accounts whose own switch is on.", value=row["enforced_here"]),
    ]


async def metrics_text(settings: Settings) -> bytes:
    if settings.metrics_folder:
        counted = CollectorRegistry()
        MultiProcessCollector(counted, path=settings.metrics_folder)
    else:
        counted = REGISTRY
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Families(await _account_gauges()))
    return generate_latest(counted) + generate_latest(gauges)


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
            await self._serve_metrics(scope, send)
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
            _count(operation, outcome, record.codes, seconds)
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

    async def _serve_metrics(self, scope, send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            status, body, content_type = 405, b"GET only\n", b"text/plain; charset=utf-8"
        else:
            status, body, content_type = 200, await metrics_text(self.settings), CONTENT_TYPE_LATEST.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
