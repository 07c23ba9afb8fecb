"""The ASGI app: POST /graphql (JSON only), the playground on GET, /healthz and /readyz; CORS for
the browser frontends of MANDATE_CORS_ORIGINS."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

import orjson
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.types import ExecutionResult
from tortoise.contrib.starlette import RegisterTortoise

from mandate.gql import observability, playground, request_record
from mandate.gql.context import Context
from mandate.gql.errors import format_error, is_expected
from mandate.gql.failures import EXCEPTION_HANDLERS, AnswerFailures
from mandate.gql.health import healthz, readyz
from mandate.gql.limits import within_budget
from mandate.gql.proxies import ClientAddress
from mandate.gql.transport import (
    JSON, content_type, error_answer, is_json, json_answer, read_body, response_media_type,
)
from mandate.gql.validation import selected_operation
from mandate.gql.schema import build_schema
from mandate.config import CorsOrigins, InvalidSetting, get_settings
from mandate.db import tortoise_config
from mandate.models import callers, cleanup, crypto
from mandate.models.availability import is_outage
from mandate.models.errors import BAD_REQUEST, MandateError


def _refusal(status: int, message: str, media_type: str, headers: dict | None = None) -> Response:
    return error_answer(MandateError(BAD_REQUEST, message), status, media_type, headers)


def _executed(result: ExecutionResult) -> bool:
    """Whether execution began: errors met before it (parse, validation, variables, the
    operation's type) carry no path and leave no data; a field's error carries its path."""
    return result.data is not None or any(error.path for error in result.errors or ())


def _not_executed_status(errors: list[GraphQLError], media_type: str) -> int:
    """GraphQL over HTTP: application/json answers a well-formed request 200 whatever its
    errors; application/graphql-response+json says 400 when the request was at fault, else 500."""
    if media_type == JSON:
        return 200
    return 400 if all(is_expected(error) for error in errors) else 500


def _answer_with_errors(result: ExecutionResult, media_type: str) -> Response:
    for error in result.errors:
        if is_outage(error.original_error):
            raise error.original_error  # AnswerFailures answers 503, with no partial data
    payload: dict = {"errors": [format_error(error) for error in result.errors]}
    if not _executed(result):
        return json_answer(payload, _not_executed_status(result.errors, media_type), media_type)
    payload["data"] = result.data  # null or partial: the operation ran
    return json_answer(payload, 200, media_type)


def _no_operation_message(operation_name: str | None) -> str:
    if operation_name:
        return f"The document has no operation named {operation_name!r}."
    return "Name the operation to run in 'operationName': the document has several, or none."


# Seconds a browser may keep a preflight's answer (Chromium keeps it 2 hours at most).
CORS_MAX_AGE = 600


def _cors(origins: CorsOrigins) -> list[Middleware]:
    """Pages of the listed origins may POST with a token and read every answer, errors included;
    no cookie is ever allowed (no Access-Control-Allow-Credentials). Starlette answers preflights."""
    if origins.refused:
        raise InvalidSetting(origins.refusal())
    if not origins:
        return []
    return [Middleware(
        CORSMiddleware, allow_origins=origins.origins, allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type"], allow_credentials=False,
        expose_headers=["Retry-After", "X-Request-Id"], max_age=CORS_MAX_AGE,
    )]


def create_app(*, database_url: str | None = None, manage_database: bool = True, served: bool = False) -> Starlette:
    """The app; `served` (the server's own, `served_app`): once started, what start-up built (the
    schema and its types, the modules, their word lists) is frozen out of the garbage collector's
    reach, since it lives as long as the process. A full collection walked those 70,000 objects
    each time (80 ms on the bench's machine); now it walks what requests made."""
    settings = get_settings()
    cors = _cors(settings.cors_origins)
    schema = build_schema(introspection=settings.introspection, compiled=settings.compiled_execution)
    crypto.warm_up()

    async def graphql(request: Request) -> Response:
        media_type = response_media_type(request.headers.get("accept"))
        if request.method == "GET":
            if settings.playground and "text/html" in request.headers.get("accept", ""):
                return playground.page()
            return _refusal(
                405, "Send operations by POST with Content-Type: application/json.", media_type, {"Allow": "POST"}
            )
        if not is_json(request.headers.get("content-type", "")):
            return _refusal(415, "Only Content-Type: application/json is accepted.", media_type)
        body = await read_body(request.receive, request.headers.get("content-length"), settings.max_body_bytes)
        if body is None:
            return _refusal(413, f"The request body is over {settings.max_body_bytes} bytes.", media_type)

        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _refusal(400, "The body is not valid JSON.", media_type)
        if isinstance(payload, list):
            return _refusal(400, "Batched requests are not accepted: send one operation per request.", media_type)
        if not isinstance(payload, dict):
            return _refusal(400, "The body must be a JSON object with a 'query'.", media_type)
        query, variables, operation_name, extensions = (
            payload.get("query"), payload.get("variables"), payload.get("operationName"), payload.get("extensions")
        )
        if not isinstance(query, str) or not query.strip():
            return _refusal(400, "'query' must be a non-empty string.", media_type)
        if variables is not None and not isinstance(variables, dict):
            return _refusal(400, "'variables' must be an object.", media_type)
        if operation_name is not None and not isinstance(operation_name, str):
            return _refusal(400, "'operationName' must be a string.", media_type)
        if extensions is not None and not isinstance(extensions, dict):
            return _refusal(400, "'extensions' must be an object.", media_type)
        if selected_operation(query, operation_name) is None:
            return _refusal(400, _no_operation_message(operation_name), media_type)

        context = Context(request, await callers.resolve(request.headers.get("authorization")))
        try:
            result = await within_budget(context.work, schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            ))
        finally:
            context.release()
        request_record.note_execution(query, operation_name, result.errors)
        if result.errors:
            return _answer_with_errors(result, media_type)
        return Response(orjson.dumps({"data": result.data}), media_type=content_type(media_type))

    @asynccontextmanager
    async def database(app: Starlette):
        if not manage_database:
            yield
            return
        async with RegisterTortoise(app, config=tortoise_config(database_url)):
            yield

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with database(app), cleanup.scheduled(settings.cleanup_minutes) as task:
            app.state.cleanup = task  # the scheduled clean-up, None when off
            if served:
                gc.freeze()
            yield

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *([playground.ASSET_ROUTE] if settings.playground else []),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(ClientAddress, trusted=settings.trusted_proxies),  # first: all after read its address
            Middleware(observability.Observability, settings=settings),  # logs, /metrics
            *cors,  # outside AnswerFailures: its 500 and 503 carry the CORS headers too
            Middleware(AnswerFailures),  # JSON for any failure; 503 when the database does not answer
        ],
    )


def served_app() -> Starlette:
    """What `mandate serve` runs in each worker (uvicorn's factory)."""
    return create_app(served=True)
