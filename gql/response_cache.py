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

from typing import Awaitable, Callable

from gql import observability
from gql.context import bearer_of
from models.sessions import Glance, glance

GLANCE_KEY = "mandate.glance"  # in the ASGI scope: (glance, caller) for the handler, read once


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

    def __len__(self) -> int:
        return len(self._entries)


class CachedAnswers:
    """The cache's own lane, in front of routing: a POST /graphql whose answer is held goes back
    at once, without Starlette's request and response objects (most of a hit's cost otherwise).
    Anything else passes on untouched but for two things it need not do again: the body read
    here is handed on as it came, and the glance is left in the scope under GLANCE_KEY.
    Refusals (media type, size, JSON) stay the handler's."""

    def __init__(self, app, cache: ResponseCache, max_body_bytes: int) -> None:
        self.app = app
        self.cache = cache
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        content_type, authorization, declared = b"", None, b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-length":
                declared = value
        if content_type.split(b";")[0].strip().lower() != b"application/json" or (
            declared.isdigit() and int(declared) > self.max_body_bytes
        ):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more and size <= self.max_body_bytes:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(chunks, False, receive, message), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        if more:  # over the cap: the handler refuses it
            await self.app(scope, _replay(chunks, True, receive), send)
            return
        body = b"".join(chunks)
        token, malformed = bearer_of(authorization.decode("latin-1") if authorization is not None else "")
        if not malformed:
            seen = await glance(token)
            caller = () if token is None else seen.caller
            scope[GLANCE_KEY] = (seen, caller)
            if caller is not None and (hit := self.cache.get(seen, caller, body)) is not None:
                observability.note_cache_hit(body, seen.user_id)
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(hit)).encode()),
                ]})
                await send({"type": "http.response.body", "body": hit})
                return
        await self.app(scope, _replay([body], False, receive), send)


def _replay(chunks: list[bytes], more: bool, receive: Callable[[], Awaitable[dict]], then: dict | None = None):
    """A receive that gives the body read so far, then whatever the client sends next."""
    pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]
    if then is not None:
        pending.append(then)

    async def replayed() -> dict:
        return pending.pop(0) if pending else await receive()

    return replayed
