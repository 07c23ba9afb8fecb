"""What a POST must be to be read, written once for the two places that read it: the response
cache's lane (gql/response_cache.py) and the GraphQL handler (gql/app.py)."""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import ClientDisconnect


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
