"""Answers to queries, kept while the data they were read from stays the same.

An entry is keyed by the caller's session and the exact bytes of the request body, and belongs
to one data version: the number that triggers replace in the same transaction as any change to
what a query can show (models/migrations/0002_data_version.py). Every request reads the version
afresh, together with its own session, in one statement (`models.sessions.glance`); an entry of
any other version is never served, and the first request to see a new version empties the cache.
So a change made by this process, another process, the CLI or by hand in the database is seen
by the very next request, as it would be without the cache.

Why that is exact: a request reads the version before it reads any data. If the version is
still the same when an entry is served, no change committed after that read, so the entry holds
what a fresh execution would read now. Entries are per session, so no caller is ever served
another's answer; the session itself (revoked, expired) is checked on every request. Only
queries that ran without any error are kept: mutations never, errors never.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect

from mandate.gql import observability
from mandate.gql.context import bearer_of
from mandate.gql.transport import content_type, is_json, read_body, response_media_type
from mandate.models.sessions import Glance, glance

# In the ASGI scope, what the lane read, for the handler not to read it again:
# (body or None when over the cap, glance or None, caller or None).
LANE_KEY = "mandate.lane"


class ResponseCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._version: int | None = None
        self._entries: dict[tuple[tuple, bytes], bytes] = {}
        self._size = 0

    def _follow(self, version: int) -> None:
        if version != self._version:
            self._entries.clear()
            self._size = 0
            self._version = version

    def get(self, glance: Glance, caller: tuple, body: bytes) -> bytes | None:
        self._follow(glance.data_version)
        return self._entries.get((caller, body))

    def put(self, glance: Glance, caller: tuple, body: bytes, response: bytes) -> None:
        if glance.data_version != self._version:
            return  # the data moved on while this request ran: its answer may be of either version
        size = len(body) + len(response)
        if size > self.max_bytes // 4:
            return
        while self._size + size > self.max_bytes:
            oldest = next(iter(self._entries))
            self._size -= len(oldest[1]) + len(self._entries.pop(oldest))
        self._entries[(caller, body)] = response
        self._size += size


class CachedAnswers:
    """The cache's own lane, in front of routing: a POST /graphql whose answer is held goes back
    at once, without Starlette's request and response objects (most of a hit's cost otherwise).
    Anything else passes on with what it read left in the scope under LANE_KEY (the body and the
    glance), so the handler does neither again. Refusals (media type, size, JSON) stay the
    handler's."""

    def __init__(self, app, cache: ResponseCache, max_body_bytes: int) -> None:
        self.app = app
        self.cache = cache
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            headers.setdefault(name, value.decode("latin-1"))
        if not is_json(headers.get(b"content-type", "")):
            await self.app(scope, receive, send)  # refused by the handler
            return
        try:
            body = await read_body(receive, headers.get(b"content-length"), self.max_body_bytes)
        except ClientDisconnect:
            return  # nobody to answer
        seen = caller = None
        if body is not None:  # (over the cap: refused by the handler)
            token, malformed = bearer_of(headers.get(b"authorization", ""))
            if not malformed:
                seen = await glance(token)
                caller = () if token is None else seen.caller
                if caller is not None and (hit := self.cache.get(seen, caller, body)) is not None:
                    observability.note_cache_hit(body, seen.user_id)
                    media_type = content_type(response_media_type(headers.get(b"accept"))).encode()
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", media_type), (b"content-length", str(len(hit)).encode()),
                    ]})
                    await send({"type": "http.response.body", "body": hit})
                    return
        scope[LANE_KEY] = (body, seen, caller)
        await self.app(scope, receive, send)
