"""Database set-up: the tortoise config, start and stop, migrations."""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContextPooled
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.migrations.api import migrate as tortoise_migrate

from mandate.config import get_settings

MODEL_MODULES = ["mandate.models.tables"]


async def _keep_session(connection) -> None:
    """asyncpg's pool, on taking a connection back, first rolls back any open transaction (kept)
    and then by default sends RESET ALL, CLOSE ALL, UNLISTEN * and an advisory-unlock: a second
    round trip after every statement. Mandate sets nothing on a session (its one setting is
    transaction-local: migration 0002), listens to nothing and takes no advisory locks, so there
    is nothing to reset."""


class _GivenBackOnFailedBegin:
    """tortoise 1.1 enters a transaction by taking a connection (from asyncpg's pool; SQLite's
    one connection's lock), then sending BEGIN. When BEGIN fails (a connection a restart broke),
    it never gives the connection back: five such failures empty the pool, one locks SQLite, and
    every later transaction of the process waits forever. Give it back, then raise."""

    async def __aenter__(self):
        try:
            return await super().__aenter__()
        except BaseException as error:
            if hasattr(self, "token"):  # set once the connection is taken, just before BEGIN
                with contextlib.suppress(Exception):  # the rollback fails; the release is in its finally
                    await self.__aexit__(type(error), error, error.__traceback__)
            raise


class _PooledTransaction(_GivenBackOnFailedBegin, TransactionContextPooled):
    pass


class _SqliteTransaction(_GivenBackOnFailedBegin, SqliteTransactionContext):
    pass


class PostgresClient(AsyncpgDBClient):
    def _in_transaction(self) -> _PooledTransaction:
        return _PooledTransaction(TransactionWrapper(self), self._pool_init_lock)


class SqliteFileClient(SqliteClient):
    def _in_transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(SqliteTransactionWrapper(self), self._lock)


def get_client_class(db_info: dict) -> type:
    """tortoise's engine hook (this module is the engine of every connection): its own clients,
    with transactions that give back what a failed BEGIN took."""
    return SqliteFileClient if "file_path" in db_info["credentials"] else PostgresClient


def _connection(database_url: str, migrating: bool) -> dict:
    config = expand_db_url(database_url)
    if config["engine"] == "tortoise.backends.asyncpg":
        config["credentials"]["reset"] = _keep_session
        # PostgreSQL's JIT compiles a statement whose estimated cost passes jit_above_cost: the
        # caller's statement (its CTEs) is estimated past it even on small tables, and compiling
        # took 70 ms of a 71 ms request. Mandate's statements are short lookups: never worth it.
        settings = dict(config["credentials"].get("server_settings") or {})
        settings.setdefault("jit", "off")
        config["credentials"]["server_settings"] = settings
    if not migrating:  # tortoise's migrator picks its schema editor by its own clients' modules
        config["engine"] = __name__
    return config


def tortoise_config(database_url: str | None = None, *, migrating: bool = False) -> dict:
    return {
        "connections": {"default": _connection(database_url or get_settings().database_url, migrating)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "mandate.models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


class _LazyConfig(dict):
    """For the `tortoise` command (pyproject's [tool.tortoise]): read DATABASE_URL when asked."""

    def __init__(self) -> None:
        super().__init__(tortoise_config(migrating=True))


TORTOISE_ORM = _LazyConfig()


async def migrate(database_url: str | None = None, progress: Callable[[str, str, str], object] | None = None) -> None:
    """Apply pending migrations, then leave tortoise closed; `progress(event, app, name)` hears each step."""
    try:
        await tortoise_migrate(config=tortoise_config(database_url, migrating=True), progress=progress)
    finally:
        await Tortoise.close_connections()


async def init(database_url: str | None = None) -> None:
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def connected(database_url: str | None = None) -> AsyncIterator[None]:
    await init(database_url)
    try:
        yield
    finally:
        await close()
