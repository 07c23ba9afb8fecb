"""Answers for failures that no resolver answers: JSON always, never Starlette's plain-text page.

A database that does not answer (models.availability.is_outage), wherever it is met (the cache's
lane, authentication, a resolver, a health check), is HTTP 503 with one SERVICE_UNAVAILABLE
error, `extensions.retryAfter` and a `Retry-After` header, and no partial data. Anything else
that escapes is a masked INTERNAL_SERVER_ERROR, HTTP 500, logged with its trace.

`AnswerFailures` sits inside the request log (gql/observability.py), so the log and the metrics
count the status that was sent; Starlette's own handlers (`EXCEPTION_HANDLERS`) answer what is
raised outside it, and the router's 404 and 405, in the same JSON.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mandate.gql.request_record import current_request
from mandate.gql.transport import error_answer, response_media_type
from mandate.models.availability import RETRY_AFTER_SECONDS, is_outage
from mandate.models.errors import BAD_REQUEST, INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE, MandateError

log = logging.getLogger("mandate.http")


def outage_answer(error: BaseException, media_type: str, payload: dict | None = None) -> Response:
    """503 for a database that does not answer; logged in a line, with no trace (it is no bug)."""
    log.warning("the database does not answer: %s: %s", type(error).__name__, error)
    current_request().outcome = SERVICE_UNAVAILABLE
    return error_answer(
        MandateError(SERVICE_UNAVAILABLE, retryAfter=RETRY_AFTER_SECONDS), 503, media_type,
        {"Retry-After": str(RETRY_AFTER_SECONDS)}, payload,
    )


def failure_answer(error: BaseException, media_type: str) -> Response:
    if is_outage(error):
        return outage_answer(error, media_type)
    log.error("unexpected error", exc_info=error)
    current_request().outcome = INTERNAL_SERVER_ERROR
    return error_answer(MandateError(INTERNAL_SERVER_ERROR, "Internal server error."), 500, media_type)


class AnswerFailures:
    """Pure ASGI: an exception raised before the answer has started is answered here."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as error:  # noqa: BLE001 - every failure gets an answer in JSON
            if started:
                raise  # half an answer is out: only the server's log can tell
            answer = failure_answer(error, response_media_type(Headers(scope=scope).get("accept")))
            await answer(scope, receive, send)


async def _last_resort(request: Request, error: Exception) -> Response:
    return failure_answer(error, response_media_type(request.headers.get("accept")))


async def _http_refusal(request: Request, error: HTTPException) -> Response:
    return error_answer(
        MandateError(BAD_REQUEST, error.detail), error.status_code,
        response_media_type(request.headers.get("accept")), error.headers,
    )


# Starlette gives the Exception handler to its ServerErrorMiddleware (outermost), the others to
# its ExceptionMiddleware (around the router).
EXCEPTION_HANDLERS = {Exception: _last_resort, HTTPException: _http_refusal}
