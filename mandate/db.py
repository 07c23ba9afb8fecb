"""Database set-up: the tortoise config, start and stop, migrations."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from mandate.config import get_settings

MODEL_MODULES = ["models.tables"]


async def _keep_session(connection) -> None:
    """asyncpg's pool, on taking a connection back, first rolls back any open transaction (kept)
    and then by default sends RESET ALL, CLOSE ALL, UNLISTEN * and an advisory-unlock: a second
    round trip after every statement. Mandate sets nothing on a session (its one setting is
    transaction-local: migration 0002), listens to nothing and takes no advisory locks, so there
    is nothing to reset."""


def _connection(database_url: str) -> str | dict:
    config = expand_db_url(database_url)
    if config["engine"] != "tortoise.backends.asyncpg":
        return database_url
    config["credentials"]["reset"] = _keep_session
    return config


def tortoise_config(database_url: str | None = None) -> dict:
    return {
        "connections": {"default": _connection(database_url or get_settings().database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


class _LazyConfig(dict):
    """For the `tortoise` command (pyproject's [tool.tortoise]): read DATABASE_URL when asked."""

    def __init__(self) -> None:
        super().__init__(tortoise_config())


TORTOISE_ORM = _LazyConfig()


async def migrate(database_url: str | None = None, progress: Callable[[str, str, str], object] | None = None) -> None:
    """Apply pending migrations, then leave tortoise closed; `progress(event, app, name)` hears each step."""
    try:
        await tortoise_migrate(config=tortoise_config(database_url), progress=progress)
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
