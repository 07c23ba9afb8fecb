"""The databases the suite runs on: SQLite always, PostgreSQL when MANDATE_TEST_POSTGRES_URL
names a server (each database made for the run, or for one test, and dropped after)."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tortoise import Tortoise

TABLES = [
    "audit_events", "throttles", "api_tokens", "recovery_codes", "grace_periods", "totp_devices", "sessions", "site_memberships",
    "memberships", "sites", "accounts", "users",
]
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("MANDATE_TEST_POSTGRES_URL") else [])


def backend_of(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgres") else "sqlite"


async def on_server(server_url: str, statement: str) -> None:
    """Runs one statement on the PostgreSQL server, outside any database of the suite's."""
    import asyncpg

    admin = await asyncpg.connect(urlunsplit(urlsplit(server_url)._replace(scheme="postgresql")))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def create_postgres_database(server_url: str) -> tuple[str, str]:
    """A new, empty database on the server: (name, url)."""
    name = f"mandate_test_{secrets.token_hex(4)}"
    await on_server(server_url, f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def drop_postgres_database(server_url: str, name: str) -> None:
    await on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def new_database(backend: str, folder: Path):
    """A database never migrated: (url, drop)."""
    if backend == "sqlite":
        async def nothing() -> None:
            pass
        return f"sqlite://{folder / 'mandate.sqlite3'}", nothing
    server = os.environ["MANDATE_TEST_POSTGRES_URL"]
    name, url = await create_postgres_database(server)
    return url, lambda: drop_postgres_database(server, name)


async def empty_database(url: str) -> None:
    """Deletes every row of a migrated database that a `mandate` process serves."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            conn.executescript("".join(f"DELETE FROM {table};" for table in TABLES))
        return
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


async def forget_backend() -> None:
    """Unbind the models, so the next backend binds them afresh (tortoise caches SQL per
    connection name, which both backends share)."""
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    await Tortoise._reset_apps()
    EXECUTOR_CACHE.clear()
