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

from models.sessions import Glance


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
