"""The ASGI app: POST /graphql (JSON only), the playground on GET, /healthz."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import orjson
from graphql import OperationType
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.contrib.starlette import RegisterTortoise

from gql import observability, playground
from gql.context import Context
from gql.errors import format_error
from gql.limits import refused_as_too_complex, within_budget
from gql.proxies import ClientAddress
from gql.response_cache import LANE_KEY, CachedAnswers, ResponseCache
from gql.transport import is_json, read_body
from gql.validation import selected_operation
from gql.schema import build_schema
from mandate.config import get_settings
from mandate.db import tortoise_config
from models import cleanup, crypto
from models.errors import BAD_REQUEST
from models.sql import fetch

log = logging.getLogger("mandate.http")


def _json(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _refusal(status: int, message: str, headers: dict | None = None) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": BAD_REQUEST}}]}, status, headers)


def _no_operation_message(operation_name: str | None) -> str:
    if operation_name:
        return f"The document has no operation named {operation_name!r}."
    return "Name the operation to run in 'operationName': the document has several, or none."


def create_app(*, database_url: str | None = None, manage_database: bool = True) -> Starlette:
    settings = get_settings()
    schema = build_schema(introspection=settings.introspection)
    crypto.warm_up()
    cache = ResponseCache(settings.response_cache_mb * 2**20) if settings.response_cache_mb > 0 else None

    async def graphql(request: Request) -> Response:
        if request.method == "GET":
            if settings.playground and "text/html" in request.headers.get("accept", ""):
                return playground.page()
            return _refusal(
                405, "Send operations by POST with Content-Type: application/json.", {"Allow": "POST"}
            )
        if not is_json(request.headers.get("content-type", "")):
            return _refusal(415, "Only Content-Type: application/json is accepted.")
        # What the cache's lane read, when it is on (a held answer never reaches here).
        body, glance, caller = request.scope.get(LANE_KEY) or (
            await read_body(request.receive, request.headers.get("content-length"), settings.max_body_bytes),
            None, None,
        )
        if body is None:
            return _refusal(413, f"The request body is over {settings.max_body_bytes} bytes.")

        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _refusal(400, "The body is not valid JSON.")
        if isinstance(payload, list):
            return _refusal(400, "Batched requests are not accepted: send one operation per request.")
        if not isinstance(payload, dict):
            return _refusal(400, "The body must be a JSON object with a 'query'.")
        query, variables, operation_name = (
            payload.get("query"), payload.get("variables"), payload.get("operationName")
        )
        if not isinstance(query, str) or not query.strip():
            return _refusal(400, "'query' must be a non-empty string.")
        if variables is not None and not isinstance(variables, dict):
            return _refusal(400, "'variables' must be an object.")
        if operation_name is not None and not isinstance(operation_name, str):
            return _refusal(400, "'operationName' must be a string.")
        operation = selected_operation(query, operation_name)
        if operation is None:
            return _refusal(400, _no_operation_message(operation_name))

        context = Context(request)
        result = await within_budget(context.work, schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
        ))
        observability.note_execution(query, operation_name, result.errors)
        if refused_as_too_complex(result):  # the refusal alone: no data, not even null
            return _json({"errors": [format_error(error) for error in result.errors]})
        if result.errors:
            return _json({"errors": [format_error(error) for error in result.errors], "data": result.data})
        answer = orjson.dumps({"data": result.data})
        if cache is not None and caller is not None and operation is OperationType.QUERY:
            cache.put(glance, caller, body, answer)
        return Response(answer, media_type="application/json")

    async def healthz(request: Request) -> Response:
        try:
            await fetch("SELECT 1 AS ok")
        except Exception:  # noqa: BLE001 - any failure means the database does not answer
            log.exception("health check failed")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

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
            yield

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *([playground.ASSET_ROUTE] if settings.playground else []),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(ClientAddress, trusted=settings.trusted_proxies),  # first: all after read its address
            Middleware(observability.Observability, settings=settings),  # logs, /metrics
            *([Middleware(CachedAnswers, cache=cache, max_body_bytes=settings.max_body_bytes)] if cache is not None else []),
        ],
    )
