"""The suite runs every test on SQLite, and again on PostgreSQL when
MANDATE_TEST_POSTGRES_URL is set (each run in a database of its own, created and dropped here).

Tests talk to the real ASGI app over HTTP (httpx), seed data through the import format of
API.md, and move time with the `clock` fixture instead of sleeping.

Fixtures only: what they are made of lives in tests/support.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.backends.asyncpg.client import TransactionWrapper as PostgresTransaction
from tortoise.backends.sqlite.client import SqliteTransactionWrapper as SqliteTransaction

# Cheap argon2 for the suite (the production cost is set in mandate.config).
os.environ.setdefault("MANDATE_ARGON2_TIME_COST", "1")
os.environ.setdefault("MANDATE_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("MANDATE_SECRET_KEY", "test-key-" + secrets.token_hex(8))

from mandate.gql.app import create_app  # noqa: E402
from mandate import db  # noqa: E402
from mandate.config import reload_settings  # noqa: E402
from mandate.models import clock as domain_clock  # noqa: E402
from mandate.models.importing import import_data  # noqa: E402
from mandate.models.tables import AuditEvent  # noqa: E402

from tests.support import worlds  # noqa: E402
from tests.support.api import PASSWORD, Api, Login, app_client  # noqa: E402
from tests.support.clock import Clock, offset_to_a_fresh_step  # noqa: E402
from tests.support.databases import (  # noqa: E402
    BACKENDS,
    TABLES,
    create_postgres_database,
    drop_postgres_database,
    forget_backend,
)
from tests.support.people import enrolled  # noqa: E402
from tests.support.servers import Cli  # noqa: E402


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request):
    """One migrated database per backend, for the whole run."""
    if request.param == "sqlite":
        folder = tempfile.mkdtemp(prefix="mandate-test-")
        url = f"sqlite://{Path(folder) / 'test.sqlite3'}"
        await db.migrate(url)
        await db.init(url)
        yield url
        await db.close()
        await forget_backend()
        shutil.rmtree(folder, ignore_errors=True)
    else:
        server = os.environ["MANDATE_TEST_POSTGRES_URL"]
        name, url = await create_postgres_database(server)
        try:
            await db.migrate(url)
            await db.init(url)
            yield url
            await db.close()
            await forget_backend()
        finally:
            await drop_postgres_database(server, name)


@pytest.fixture(autouse=True)
async def clean_database(database_url):
    """Every test starts from empty tables, and a clock just past the start of a TOTP step."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        await conn.execute_script(
            "UPDATE accounts SET parent_id = NULL;"  # parents are RESTRICT: unlink before deleting
            + "".join(f"DELETE FROM {t};" for t in TABLES)
            + "DELETE FROM sqlite_sequence;"
        )
    domain_clock.offset = offset_to_a_fresh_step()
    yield
    domain_clock.offset = 0.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(database_url):
    return create_app(manage_database=False)


@pytest.fixture
async def client(app):
    async with app_client(app) as http:
        yield http


@pytest.fixture
async def api(client) -> Api:
    return Api(client)


@pytest.fixture
def seed():
    """seed(data): load users/accounts in the import format of API.md. Users get PASSWORD
    unless they give one."""

    async def load(data: dict):
        for user in data.get("users", []):
            user.setdefault("password", PASSWORD)
            user.setdefault("name", user["email"].split("@")[0].title())
        before = await AuditEvent.all().order_by("-id").first()
        summary = await import_data(data)
        # The import audits what it writes; a test's set-up is not what the test looks for.
        await AuditEvent.filter(id__gt=before.id if before else 0).delete()
        return summary

    return load


@pytest.fixture(autouse=True)
def fresh_settings():
    reload_settings()
    yield


@pytest.fixture
def statements(monkeypatch):
    """A list that every SQL statement sent from here on is appended to, in a transaction or not."""
    sent: list[str] = []
    # The connection's class, and the class of the connection a transaction runs on.
    classes = {type(connections.get("default")), PostgresTransaction, SqliteTransaction}
    for client in classes:
        for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
            original = getattr(client, name)

            async def counted(self, query, *args, _original=original, **kwargs):
                sent.append(query)
                return await _original(self, query, *args, **kwargs)

            monkeypatch.setattr(client, name, counted)
    return sent


# The seeded organisations of tests/support/worlds.py.

@pytest.fixture
async def clinic(api, seed) -> str:
    """Clinic, with a manager, a member and a user with no role; its id."""
    return await worlds.seed_clinic(api, seed)


@pytest.fixture
async def member(api, clinic, clock) -> Login:
    """The Clinic's member, enrolled, on a clock a minute on (every nearby code unused)."""
    return await enrolled(api, worlds.MEMBER, clock)


@pytest.fixture
async def ids(api, seed) -> dict[str, str]:
    """The trees of tests/support/worlds.py seeded: the id of every account and site, by name."""
    return await worlds.seed_trees(api, seed)


@pytest.fixture
def cli(database_url, tmp_path) -> Cli:
    """`mandate` run as a real process against the suite's database."""
    return Cli(database_url, tmp_path)
