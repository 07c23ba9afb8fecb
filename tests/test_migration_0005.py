"""Migration 0005 (a TOTP device row), applied by `mandate migrate` to a database at 0003 with
enrolled users in it, on each backend: every confirmed secret and last used step moves to
`totp_devices`, recovery codes and failure counts stay, and `users` loses its TOTP columns.
Then `mandate serve` on it: every user still logs in with their code, a step used before the
migration is still refused, recovery codes still work and a half-used throttle still counts."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pyotp
import pytest

from mandate.models.crypto import digest, encrypt_secret, hash_password
from mandate.models.totp import new_recovery_code

MIGRATE_TO_0003 = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from mandate.db import tortoise_config

async def main():
    try:
        await migrate(config=tortoise_config(sys.argv[1], migrating=True), target="models.0003_enrolment_per_session")
    finally:
        await Tortoise.close_connections()  # else aiosqlite's thread keeps the process alive

asyncio.run(main())
"""
COMMAND = [sys.executable, "-m", "mandate.cli"]
PASSWORD = "password-123"
ANN_SECRET, BOB_SECRET = pyotp.random_base32(length=32), pyotp.random_base32(length=32)
ANN_RECOVERY = [new_recovery_code() for _ in range(2)]
VERIFY = "mutation($c: String!) { verifyTwoFactor(code: $c) { status } }"


def step_now() -> int:
    return int(time.time() // 30)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def rows_at_0003(ann_last_step: int) -> list[str]:
    """Ann: enrolled, her last step the current one, two recovery codes. Bob: enrolled, three
    failed codes counted (one free failure left). Cat: no 2FA."""
    password_hash = hash_password(PASSWORD)
    at = "'2026-11-01 10:00:00+00:00'"
    return [
        "INSERT INTO users (id, email, name, password_hash, totp_secret, totp_last_step, created_at) VALUES"
        f" (1, 'ann@example.org', 'Ann', '{password_hash}', '{encrypt_secret(ANN_SECRET)}', {ann_last_step}, {at}),"
        f" (2, 'bob@example.org', 'Bob', '{password_hash}', '{encrypt_secret(BOB_SECRET)}', 0, {at}),"
        f" (3, 'cat@example.org', 'Cat', '{password_hash}', NULL, 0, {at})",
        # No ids from here: the server adds rows to these tables (PostgreSQL's sequences stay at 1).
        "INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES"
        + ",".join(f" (1, '{digest(code)}', NULL)" for code in ANN_RECOVERY),
        f"INSERT INTO throttles (key, failures, last_failure_at) VALUES ('factor:2', 3, {at})",
        "INSERT INTO audit_events (at, action, actor_id, subject_id)"
        " VALUES ('2026-11-02 09:00:00+00:00', 'TOTP_CONFIRMED', 1, 1)",
    ]


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
    if url.startswith("sqlite"):
        [rows] = await run_sql(url, [f"SELECT name FROM pragma_table_info('{table}')"])
    else:
        [rows] = await run_sql(url, [
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
        ])
    return [name for (name,) in rows]


async def on_postgres_server(statement: str) -> None:
    import asyncpg

    server = os.environ["MANDATE_TEST_POSTGRES_URL"]
    admin = await asyncpg.connect(urlunsplit(urlsplit(server)._replace(scheme="postgresql")))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}  # the suite's key and argon2 cost


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def at_0003_with_enrolled_users(database_url, tmp_path):
    """A database of the suite's backend at 0003, holding enrolled users; (url, Ann's last step)."""
    if database_url.startswith("sqlite"):
        url, name = f"sqlite://{tmp_path / 'mandate.sqlite3'}", None
    else:
        name = f"mandate_test_0005_{os.getpid()}_{time.monotonic_ns()}"
        await on_postgres_server(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(os.environ["MANDATE_TEST_POSTGRES_URL"])._replace(path=f"/{name}"))
    try:
        done = subprocess.run([sys.executable, "-c", MIGRATE_TO_0003, url], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        ann_last_step = step_now()
        await run_sql(url, rows_at_0003(ann_last_step))
        yield url, ann_last_step
    finally:
        if name is not None:
            await on_postgres_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def migrated_and_served(at_0003_with_enrolled_users, tmp_path):
    """`mandate migrate`, then `mandate serve` on the database: (url, client, Ann's last step)."""
    url, ann_last_step = at_0003_with_enrolled_users
    env = environment(url)
    migrated = subprocess.run([*COMMAND, "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*COMMAND, "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
            yield url, client, ann_last_step
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def gql(client: httpx.AsyncClient, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return response.json()


async def login(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    body = await gql(
        client, "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { status token } }",
        {"e": email, "p": PASSWORD},
    )
    assert "errors" not in body, body
    return body["data"]["login"]["status"], body["data"]["login"]["token"]


async def verify(client: httpx.AsyncClient, email: str, code: str) -> dict:
    status, token = await login(client, email)
    assert status == "TWO_FACTOR_REQUIRED", status
    return await gql(client, VERIFY, {"c": code}, token)


def error_code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


async def test_migration_0005_moves_every_secret_and_step_to_a_device_and_keeps_the_rest(migrated_and_served):
    url, _, ann_last_step = migrated_and_served
    assert "totp_secret" not in await columns(url, "users")
    assert "totp_last_step" not in await columns(url, "users")
    devices, codes, counts = await run_sql(url, [
        "SELECT user_id, last_step FROM totp_devices ORDER BY user_id",
        "SELECT user_id, code_hash FROM recovery_codes ORDER BY id",
        "SELECT key, failures FROM throttles",
    ])
    assert devices == [(1, ann_last_step), (2, 0)]
    assert codes == [(1, digest(code)) for code in ANN_RECOVERY]
    assert counts == [("factor:2", 3)]


async def test_after_migration_0005_every_user_logs_in_with_their_code(migrated_and_served):
    _, client, ann_last_step = migrated_and_served
    body = await verify(client, "ann@example.org", code_at(ANN_SECRET, ann_last_step + 1))
    assert body.get("data", {}).get("verifyTwoFactor") == {"status": "AUTHENTICATED"}, body
    body = await verify(client, "bob@example.org", code_at(BOB_SECRET, step_now()))
    assert body.get("data", {}).get("verifyTwoFactor") == {"status": "AUTHENTICATED"}, body
    status, _ = await login(client, "cat@example.org")
    assert status == "AUTHENTICATED"  # no 2FA before, none made


async def test_after_migration_0005_a_step_used_before_it_is_still_refused(migrated_and_served):
    _, client, ann_last_step = migrated_and_served
    assert error_code(await verify(client, "ann@example.org", code_at(ANN_SECRET, ann_last_step))) == "INVALID_CODE"


async def test_after_migration_0005_recovery_codes_still_work_once(migrated_and_served):
    _, client, _ = migrated_and_served
    body = await verify(client, "ann@example.org", ANN_RECOVERY[0])
    assert body.get("data", {}).get("verifyTwoFactor") == {"status": "AUTHENTICATED"}, body
    assert error_code(await verify(client, "ann@example.org", ANN_RECOVERY[0])) == "INVALID_CODE"


async def test_after_migration_0005_a_half_used_throttle_still_counts(migrated_and_served):
    _, client, _ = migrated_and_served
    # Bob's fourth failure: still INVALID_CODE, and the last free one, so a delay starts after it.
    body = await verify(client, "bob@example.org", code_at(BOB_SECRET, step_now() - 10))
    assert error_code(body) == "INVALID_CODE" and body["errors"][0]["extensions"].get("retryAfter") == 1, body
