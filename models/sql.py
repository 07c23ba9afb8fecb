"""Raw SQL for what the ORM cannot say (recursive CTEs), written once for SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterable, Sequence

from tortoise import connections

_PLACEHOLDER = re.compile(r"\?")


def _connection():
    return connections.get("default")


def in_list(values: Sequence[Any]) -> str:
    """Placeholders for an IN list; an empty list matches nothing."""
    return ", ".join("?" for _ in values) if values else "NULL"


@lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """PostgreSQL's $1, $2, ... for `?` placeholders."""
    counter = iter(range(1, 10**6))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


async def fetch(sql: str, params: Iterable[Any] = ()) -> list[dict]:
    """Run a query written with `?` placeholders on whichever database is configured."""
    conn = _connection()
    if conn.capabilities.dialect == "postgres":
        sql = _numbered(sql)
    return await conn.execute_query_dict(sql, list(params))


def as_datetime(value: Any) -> datetime | None:
    """A timestamp from a raw query: PostgreSQL gives datetimes, SQLite the text tortoise wrote."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value
