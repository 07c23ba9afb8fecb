"""The suite runs every test on SQLite, and again on PostgreSQL when
MANDATE_TEST_POSTGRES_URL is set (each run in a database of its own, created and dropped here).

Tests talk to the real ASGI app over HTTP (httpx), seed data through the import format of
API.md, and move time with the `clock` fixture instead of sleeping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pyotp
import pytest
from tortoise import Tortoise, connections

# Cheap argon2 for the suite (the production cost is set in mandate.config).
os.environ.setdefault("MANDATE_ARGON2_TIME_COST", "1")
os.environ.setdefault("MANDATE_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("MANDATE_SECRET_KEY", "test-key-" + secrets.token_hex(8))

from mandate.gql.app import create_app  # noqa: E402
from mandate import db  # noqa: E402
from mandate.config import reload_settings  # noqa: E402
from mandate.models import clock as domain_clock  # noqa: E402
from mandate.models.importing import import_data  # noqa: E402

TABLES = [
    "audit_events", "throttles", "recovery_codes", "totp_devices", "sessions", "site_memberships",
    "memberships", "sites", "accounts", "users",
]
CLIENT_ADDRESS = "203.0.113.7"

BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("MANDATE_TEST_POSTGRES_URL") else [])


async def _on_server(server_url: str, statement: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(urlunsplit(urlsplit(server_url)._replace(scheme="postgresql")))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def _create_postgres_database(server_url: str) -> tuple[str, str]:
    name = f"mandate_test_{secrets.token_hex(4)}"
    await _on_server(server_url, f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _drop_postgres_database(server_url: str, name: str) -> None:
    await _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _forget_backend() -> None:
    """Unbind the models, so the next backend binds them afresh (tortoise caches SQL per
    connection name, which both backends share)."""
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    await Tortoise._reset_apps()
    EXECUTOR_CACHE.clear()


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
        await _forget_backend()
        shutil.rmtree(folder, ignore_errors=True)
    else:
        server = os.environ["MANDATE_TEST_POSTGRES_URL"]
        name, url = await _create_postgres_database(server)
        try:
            await db.migrate(url)
            await db.init(url)
            yield url
            await db.close()
            await _forget_backend()
        finally:
            await _drop_postgres_database(server, name)


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


def offset_to_a_fresh_step() -> float:
    """A clock offset that puts the domain's time just after a 30 s step begins, so a test has
    nearly 30 s before a code computed now stops being the current step's."""
    return 30 - (time.time() % 30) + 0.25


class Clock:
    """Moves the domain's clock (TOTP steps, throttling delays, token expiry)."""

    def advance(self, seconds: float) -> None:
        domain_clock.offset += seconds

    def time(self) -> float:
        return domain_clock.time()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Result:
    status: int
    body: dict

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    @property
    def code(self) -> str | None:
        """The one error code (fails the test when there is not exactly one error)."""
        assert len(self.errors) == 1, f"expected one error, got {self.body}"
        return self.codes[0]


def totp_now(secret: str, steps: int = 0) -> str:
    """The code of the current 30 s step (plus `steps`) on the domain's clock."""
    return pyotp.TOTP(secret).at(domain_clock.time() + 30 * steps)


@dataclass
class Login:
    token: str
    secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)


class Api:
    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def gql(
        self, query: str, variables: dict | None = None, token: str | None = None,
        operation_name: str | None = None,
    ) -> Result:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        response = await self.client.post("/graphql", json=body, headers=headers)
        return Result(response.status_code, response.json())

    async def login(self, email: str, password: str = "password-123") -> Result:
        return await self.gql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ status token expiresAt user { id email } } }",
            {"e": email, "p": password},
        )

    async def login_token(self, email: str, password: str = "password-123") -> tuple[str, str]:
        """(status, token) of a successful login."""
        result = await self.login(email, password)
        assert not result.errors, result.body
        return result.data["login"]["status"], result.data["login"]["token"]

    async def enrol(self, token: str, clock: Clock | None = None) -> Login:
        """Enrol and confirm TOTP with this token; returns the usable token and the secret."""
        result = await self.gql("mutation { enrolTotp { secret otpauthUri qrCodeSvg } }", token=token)
        assert not result.errors, result.body
        secret = result.data["enrolTotp"]["secret"]
        confirmed = await self.gql(
            "mutation($c: String!) { confirmTotp(code: $c) { recoveryCodes token user { twoFactorEnabled } } }",
            {"c": totp_now(secret)},
            token=token,
        )
        assert not confirmed.errors, confirmed.body
        payload = confirmed.data["confirmTotp"]
        return Login(payload["token"] or token, secret, payload["recoveryCodes"])

    async def verify(self, token: str, code: str) -> Result:
        return await self.gql(
            "mutation($c: String!) { verifyTwoFactor(code: $c) { status token expiresAt } }", {"c": code}, token=token
        )

    async def full_login(self, email: str, secret: str, clock: Clock, password: str = "password-123") -> str:
        """Password then TOTP, on a fresh step (moves the clock 30 s so a code is never reused)."""
        clock.advance(30)
        status, token = await self.login_token(email, password)
        assert status == "TWO_FACTOR_REQUIRED", status
        result = await self.verify(token, totp_now(secret))
        assert not result.errors, result.body
        return result.data["verifyTwoFactor"]["token"]

    async def account_id(self, token: str, name: str) -> str:
        """The global id of a reachable account by name (searching the caller's trees)."""
        result = await self.gql("{ accounts { id name descendants { id name } } }", token=token)
        assert not result.errors, result.body
        for top in result.data["accounts"]:
            for account in [top, *top["descendants"]]:
                if account["name"] == name:
                    return account["id"]
        raise AssertionError(f"{name} is not reachable: {result.body}")


@pytest.fixture
async def app(database_url):
    return create_app(manage_database=False)


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def api(client) -> Api:
    return Api(client)


PASSWORD = "password-123"


@pytest.fixture
def seed():
    """seed(data): load users/accounts in the import format of API.md. Users get PASSWORD
    unless they give one."""

    async def load(data: dict):
        for user in data.get("users", []):
            user.setdefault("password", PASSWORD)
            user.setdefault("name", user["email"].split("@")[0].title())
        return await import_data(data)

    return load


@pytest.fixture(autouse=True)
def fresh_settings():
    reload_settings()
    yield


@pytest.fixture
def statements(monkeypatch):
    """A list that every SQL statement sent from here on is appended to."""
    sent: list[str] = []
    client = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(client, name)

        async def counted(self, query, *args, _original=original, **kwargs):
            sent.append(query)
            return await _original(self, query, *args, **kwargs)

        monkeypatch.setattr(client, name, counted)
    return sent


# The one-account Clinic of tests/test_login.py, shared by the login, TOTP, recovery-code and
# throttling tests. Imported when asked for: those modules import this one.

@pytest.fixture
async def clinic(api, seed) -> str:
    """Clinic, with a manager, a member and a user with no role; its id."""
    from tests.test_login import seed_clinic

    return await seed_clinic(api, seed)


@pytest.fixture
async def member(api, clinic, clock) -> Login:
    """The Clinic's member, enrolled, on a clock a minute on (every nearby code unused)."""
    from tests.test_login import MEMBER
    from tests.test_totp import enrolled

    return await enrolled(api, MEMBER, clock)
