"""Whether the database answers, and accepts writes: the one rule for what counts as an outage,
and the two checks behind /healthz and /readyz.

An outage is a failure of the database itself, never of the request: the server is down,
restarting or refusing connections, a pooled connection died under a query, or the database is
read-only (a standby, `default_transaction_read_only`, a SQLite file opened read-only). Asking
again later may succeed, so callers are told to retry; anything else unexpected is a bug.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3

import asyncpg
from tortoise.transactions import in_transaction

from mandate.models.sql import fetch

RETRY_AFTER_SECONDS = 2     # a restart of PostgreSQL takes about a second
CHECK_TIMEOUT_SECONDS = 2.0  # a health check answers within this, whatever the database does

# asyncpg's errors of a server that went away or will not take a connection or a write now.
_POSTGRES_OUTAGES = (
    asyncpg.PostgresConnectionError,          # 08: connection lost, refused, closed under a query
    asyncpg.CannotConnectNowError,            # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,               # 57P01: terminated by a shutdown or restart
    asyncpg.CrashShutdownError,               # 57P02
    asyncpg.TooManyConnectionsError,          # 53300
    asyncpg.ReadOnlySQLTransactionError,      # 25006: a standby or a read-only database
)
# sqlite3 says what failed only in words (SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_READONLY).
_SQLITE_OUTAGES = (
    "database is locked",
    "unable to open database file",
    "disk i/o error",
    "attempt to write a readonly database",
)


class DatabaseUnavailable(Exception):
    """Raised here when the database did not answer in time (a timeout names no database error)."""


def _is_outage_itself(error: BaseException) -> bool:
    if isinstance(error, (DatabaseUnavailable, *_POSTGRES_OUTAGES, ConnectionError, socket.gaierror)):
        return True
    if isinstance(error, asyncpg.InterfaceError):  # asyncpg's "connection is closed"
        return "closed" in str(error)
    if isinstance(error, asyncpg.InternalClientError):
        # A pooled connection that the server broke off while it was idle (its FATAL came before
        # the socket's end): asyncpg left it discarding input (its state 2) and hands it out.
        return "another operation (2) is in progress" in str(error)
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_SQLITE_OUTAGES)
    return False


def is_outage(error: BaseException | None) -> bool:
    """Whether this error, or one it wraps, means the database does not answer or take writes.

    tortoise wraps the driver's errors (OperationalError(exc), TransactionManagementError(exc)),
    with `from` or without: follow the cause and the arguments. Never the context: a bug met
    while handling an outage is still a bug.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _is_outage_itself(current):
            return True
        pending.append(current.__cause__)
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return False


async def _within_timeout(check, what: str) -> None:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        raise DatabaseUnavailable(f"the database did not {what} within {CHECK_TIMEOUT_SECONDS:g} s") from None


async def check_database_answers() -> None:
    """/healthz: the database answers a `SELECT 1` in time; raises an outage otherwise."""

    async def select_one() -> None:
        await fetch("SELECT 1 AS ok")

    await _within_timeout(select_one, "answer")


async def check_database_accepts_writes() -> None:
    """/readyz: a write can begin now. A DELETE that matches nothing, rolled back, takes what
    any write takes (SQLite's write lock; PostgreSQL refuses it in a read-only transaction, on a
    standby too) and changes nothing (throttles have no trigger: no data version moves)."""

    async def write_nothing() -> None:
        async with in_transaction() as connection:
            await connection.execute_query("DELETE FROM throttles WHERE 1 = 0")
            await connection.rollback()

    await _within_timeout(write_nothing, "take a write")
