"""What a POST must be to be read (its media type, its body under the cap), and what an answer is:
its media type, chosen from `Accept` (GraphQL over HTTP), and its JSON body."""

from __future__ import annotations

from typing import Awaitable, Callable

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from mandate.models.errors import MandateError


def is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


async def read_body(receive: Callable[[], Awaitable[dict]], content_length: str | None, limit: int) -> bytes | None:
    """The body, or None when it is over the limit (declared or sent; read no further than that)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        return None
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


# -- what an answer is ----------------------------------------------------------------------------

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
_CONTENT_TYPES = {JSON: JSON, GRAPHQL_RESPONSE: f"{GRAPHQL_RESPONSE}; charset=utf-8"}
_JSON_RANGES = {JSON: 2, "application/*": 1, "*/*": 0}          # how specific each match is
_GRAPHQL_RANGES = {GRAPHQL_RESPONSE: 2, "application/*": 1, "*/*": 0}


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def response_media_type(accept: str | None) -> str:
    """GRAPHQL_RESPONSE when `Accept` names it with a quality at least that of application/json
    (RFC 9110: the most specific range that matches a type gives its quality); otherwise JSON, as
    for no Accept, `*/*` or a list naming neither, which legacy clients send (the spec allows it)."""
    if not accept or GRAPHQL_RESPONSE not in accept.lower():  # most requests: nothing to parse
        return JSON
    best = {JSON: (-1, 0.0), GRAPHQL_RESPONSE: (-1, 0.0)}  # (specificity, quality)
    for item in accept.lower().split(","):
        media_range, *parameters = item.split(";")
        media_range = media_range.strip()
        for media_type, ranges in ((JSON, _JSON_RANGES), (GRAPHQL_RESPONSE, _GRAPHQL_RANGES)):
            specificity = ranges.get(media_range, -1)
            if specificity > best[media_type][0]:
                best[media_type] = (specificity, _quality(parameters))
    (graphql_specificity, graphql_quality), (_, json_quality) = best[GRAPHQL_RESPONSE], best[JSON]
    named = graphql_specificity == 2  # a wildcard alone keeps the legacy answer
    return GRAPHQL_RESPONSE if named and graphql_quality > 0 and graphql_quality >= json_quality else JSON


def content_type(media_type: str) -> str:
    return _CONTENT_TYPES[media_type]


def json_answer(payload: dict, status: int = 200, media_type: str = JSON, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=content_type(media_type))


def error_answer(error: MandateError, status: int, media_type: str = JSON,
                 headers: dict | None = None, payload: dict | None = None) -> Response:
    """A GraphQL response with this one error and no `data` (nothing ran), after `payload`."""
    body = {**(payload or {}), "errors": [{"message": error.message, "extensions": error.extensions}]}
    return json_answer(body, status, media_type, headers)
