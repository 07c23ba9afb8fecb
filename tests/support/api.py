"""The suite's client of the GraphQL API over HTTP, what it answers, and how to read an answer."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from mandate.config import reload_settings
from mandate.gql.app import create_app

from tests.support.clock import Clock
from tests.support.codes import totp_now

CLIENT_ADDRESS = "203.0.113.7"
PASSWORD = "password-123"  # every seeded user's, unless they give one
# What no error may carry: a trace, SQL, or the name of a library underneath.
INTERNALS = re.compile(
    r'Traceback|File "|\.py\b|\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b|\$1\b'
    r"|(?i:sqlite|asyncpg|psycopg|tortoise|OperationalError|IntegrityError|int32)"
)


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


def no_data(result: Result) -> bool:
    """Nothing came back beside the error: no data at all, or only nulls at the top."""
    return result.data is None or all(value is None for value in result.data.values())


def error_code(result: Result, code: str) -> bool:
    """Exactly one error, with this code, and no data leaked beside it."""
    return result.code == code and no_data(result)


async def answered(api: "Api", token: str, document: str, refusal: str) -> bool:
    """Whether the token's request is answered; refused, it must be with this code."""
    r = await api.gql(document, token=token)
    if r.errors:
        assert error_code(r, refusal), r.body
        return False
    return True


def leaked(result: Result, *secrets: str) -> list[str]:
    """Those of `secrets` that appear anywhere in the answer."""
    text = json.dumps(result.body)
    return [secret for secret in secrets if secret in text]


def timestamp(value: str) -> float:
    """A DateTime of the API as seconds since the epoch."""
    at = datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()


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

    async def login(self, email: str, password: str = PASSWORD) -> Result:
        return await self.gql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ status token expiresAt user { id email } } }",
            {"e": email, "p": password},
        )

    async def login_token(self, email: str, password: str = PASSWORD) -> tuple[str, str]:
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

    async def full_login(self, email: str, secret: str, clock: Clock, password: str = PASSWORD) -> str:
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


def app_client(app, address: str = CLIENT_ADDRESS, port: int = 40000) -> httpx.AsyncClient:
    """An HTTP client of this app in process, as if from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, port))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@asynccontextmanager
async def client_with_settings(monkeypatch, **env: str):
    """A client of a new app built under these environment settings."""
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        reload_settings()
        try:
            async with app_client(create_app(manage_database=False)) as http:
                yield http
        finally:
            patch.undo()
            reload_settings()
