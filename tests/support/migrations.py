"""A database brought to a migration of ours (`migrate_to`, in a process of its own; with rows
in it, `database_at`), and read outside the app: each statement's rows (`run_sql`) and a
table's columns (`columns`)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.databases import backend_of, new_database

MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from mandate.db import tortoise_config

async def main():
    try:
        await migrate(config=tortoise_config(sys.argv[1], migrating=True), target=sys.argv[2])
    finally:
        await Tortoise.close_connections()  # else aiosqlite's thread keeps the process alive

asyncio.run(main())
"""


def migrate_to(url: str, target: str) -> None:
    """Migrates the database at `url` up to `target` (such as "models.0003_enrolment_per_session")."""
    done = subprocess.run([sys.executable, "-c", MIGRATE_TO, url, target], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@asynccontextmanager
async def database_at(database_url: str, folder: Path, target: str, rows: list[str]):
    """A new database of the backend of `database_url`, migrated to `target` and holding `rows`
    (INSERT statements); its url, and dropped after."""
    url, drop = await new_database(backend_of(database_url), folder)
    try:
        migrate_to(url, target)
        await run_sql(url, rows)
        yield url
    finally:
        await drop()


async def run_sql(url: str, statements: list[str]) -> list[list[tuple]]:
    """Each statement's rows, on the database at `url`, outside the app."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            return [[tuple(row) for row in conn.execute(statement).fetchall()] for statement in statements]
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return [[tuple(row) for row in await conn.fetch(statement)] for statement in statements]
    finally:
        await conn.close()


async def columns(url: str, table: str) -> list[str]:
    """The names of the table's columns, as the database has them."""
    if url.startswith("sqlite"):
        [rows] = await run_sql(url, [f"SELECT name FROM pragma_table_info('{table}')"])
    else:
        [rows] = await run_sql(url, [
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
        ])
    return [name for (name,) in rows]
