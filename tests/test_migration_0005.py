"""Migration 0005 (a TOTP device row), applied by `mandate migrate` to a database at 0003 with
enrolled users in it, on each backend: every confirmed secret and last used step moves to
`totp_devices`, recovery codes and failure counts stay, and `users` loses its TOTP columns.
Then `mandate serve` on it: every user still logs in with their code, a step used before the
migration is still refused, recovery codes still work and a half-used throttle still counts."""

from __future__ import annotations

import subprocess
import time

import httpx
import pyotp
import pytest

from mandate.models.crypto import digest, encrypt_secret, hash_password
from mandate.models.totp import new_recovery_code

from tests.support.api import PASSWORD, Api, Result, error_code
from tests.support.migrations import columns, database_at, run_sql
from tests.support.servers import COMMAND, Cli, free_port, stop, wait_until_healthy

ANN_SECRET, BOB_SECRET = pyotp.random_base32(length=32), pyotp.random_base32(length=32)
ANN_RECOVERY = [new_recovery_code() for _ in range(2)]


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


@pytest.fixture
async def at_0003_with_enrolled_users(database_url, tmp_path):
    """A database of the suite's backend at 0003, holding enrolled users; (url, Ann's last step)."""
    ann_last_step = step_now()
    rows = rows_at_0003(ann_last_step)
    async with database_at(database_url, tmp_path, "models.0003_enrolment_per_session", rows) as url:
        yield url, ann_last_step


@pytest.fixture
async def migrated_and_served(at_0003_with_enrolled_users, tmp_path):
    """`mandate migrate`, then `mandate serve` on the database: (url, api, Ann's last step)."""
    url, ann_last_step = at_0003_with_enrolled_users
    cli = Cli(url, tmp_path)  # the suite's key, which encrypted the secrets above
    migrated = cli.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*COMMAND, "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=cli.env(), cwd=tmp_path
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base_url, log)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield url, Api(client), ann_last_step
    finally:
        stop(server)


async def verify(api: Api, email: str, code: str) -> Result:
    status, token = await api.login_token(email)
    assert status == "TWO_FACTOR_REQUIRED", status
    return await api.verify(token, code)


def authenticated(result: Result) -> bool:
    return not result.errors and result.data["verifyTwoFactor"]["status"] == "AUTHENTICATED"


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
    _, api, ann_last_step = migrated_and_served
    result = await verify(api, "ann@example.org", code_at(ANN_SECRET, ann_last_step + 1))
    assert authenticated(result), result.body
    result = await verify(api, "bob@example.org", code_at(BOB_SECRET, step_now()))
    assert authenticated(result), result.body
    status, _ = await api.login_token("cat@example.org")
    assert status == "AUTHENTICATED"  # no 2FA before, none made


async def test_after_migration_0005_a_step_used_before_it_is_still_refused(migrated_and_served):
    _, api, ann_last_step = migrated_and_served
    assert error_code(await verify(api, "ann@example.org", code_at(ANN_SECRET, ann_last_step)), "INVALID_CODE")


async def test_after_migration_0005_recovery_codes_still_work_once(migrated_and_served):
    _, api, _ = migrated_and_served
    result = await verify(api, "ann@example.org", ANN_RECOVERY[0])
    assert authenticated(result), result.body
    assert error_code(await verify(api, "ann@example.org", ANN_RECOVERY[0]), "INVALID_CODE")


async def test_after_migration_0005_a_half_used_throttle_still_counts(migrated_and_served):
    _, api, _ = migrated_and_served
    # Bob's fourth failure: still INVALID_CODE, and the last free one, so a delay starts after it.
    result = await verify(api, "bob@example.org", code_at(BOB_SECRET, step_now() - 10))
    assert error_code(result, "INVALID_CODE") and result.errors[0]["extensions"].get("retryAfter") == 1, result.body
