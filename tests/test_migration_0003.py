"""Migration 0003 (enrolment per session), applied by `mandate migrate` to a database at 0002
with data in it, on each backend: every row stays, the users' pending secrets are dropped (no
session is known to have started them), sessions gain an empty pending secret; and migration 0004
then drops 0002's data version whole."""

from __future__ import annotations

import pytest

from tests.support.migrations import columns, database_at, migrate_to, run_sql
from tests.support.servers import Mandate

ROWS_AT_0002 = [
    "INSERT INTO users (id, email, name, password_hash, totp_secret, totp_pending_secret, totp_last_step, created_at)"
    " VALUES (1, 'ann@example.org', 'Ann', NULL, 'fernet-confirmed', NULL, 7, '2026-11-01 10:00:00+00:00'),"
    " (2, 'bob@example.org', 'Bob', NULL, NULL, 'fernet-pending', 0, '2026-11-01 10:00:00+00:00')",
    "INSERT INTO accounts (id, name, enforced) VALUES (1, 'Clinic', TRUE)",
    "INSERT INTO memberships (id, user_id, account_id, role) VALUES (1, 1, 1, 'MANAGER'), (2, 2, 1, 'MEMBER')",
    "INSERT INTO sessions (id, token_hash, user_id, kind, two_factor_passed, created_at, expires_at, client_address)"
    " VALUES (1, 'hash-ann', 1, 'full', TRUE, '2026-11-01 10:00:00+00:00', '2036-11-01 10:00:00+00:00', '203.0.113.7'),"
    " (2, 'hash-bob', 2, 'enrolment', FALSE, '2026-11-01 10:00:00+00:00', '2036-11-01 10:00:00+00:00', NULL)",
    "INSERT INTO recovery_codes (id, user_id, code_hash, used_at) VALUES (1, 1, 'code-hash', NULL)",
    "INSERT INTO audit_events (id, at, action, actor_id, subject_id, client_address)"
    " VALUES (1, '2026-11-01 10:00:00+00:00', 'TOTP_ENROLMENT_STARTED', 2, 2, '203.0.113.7')",
]


@pytest.fixture
async def at_0002_with_data(database_url, tmp_path):
    """A database of the suite's backend, migrated to 0002 and holding a few rows of each kind."""
    async with database_at(database_url, tmp_path, "models.0002_data_version", ROWS_AT_0002) as url:
        yield url, Mandate(url, tmp_path)


async def test_migration_0003_keeps_every_row_and_drops_the_users_pending_secrets(at_0002_with_data):
    url, _ = at_0002_with_data
    snapshot = [
        "SELECT id, email, totp_secret, totp_last_step FROM users ORDER BY id",
        "SELECT id, token_hash, user_id, kind, revoked_at FROM sessions ORDER BY id",
        "SELECT id, user_id, account_id, role FROM memberships ORDER BY id",
        "SELECT id, code_hash FROM recovery_codes ORDER BY id",
        "SELECT id, action, client_address FROM audit_events ORDER BY id",
    ]
    before = await run_sql(url, snapshot)

    migrate_to(url, "models.0003_enrolment_per_session")  # 0005 moves the confirmed secrets on

    assert await run_sql(url, snapshot) == before
    assert "totp_pending_secret" not in await columns(url, "users")
    assert "totp_pending_secret" in await columns(url, "sessions")
    assert await run_sql(url, ["SELECT id FROM sessions WHERE totp_pending_secret IS NOT NULL"]) == [[]]


async def test_migration_0004_drops_the_data_version_its_function_and_its_triggers(at_0002_with_data):
    url, mandate = at_0002_with_data
    assert await run_sql(url, ["SELECT version FROM mandate_data_version"]) != [[]]  # 0002 made it
    assert mandate.run("migrate").returncode == 0
    if url.startswith("sqlite"):
        leftovers = "SELECT name FROM sqlite_master WHERE name LIKE 'mandate_data_version%'"
    else:
        leftovers = (
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'mandate_data_version%'"
            " UNION ALL SELECT proname FROM pg_proc WHERE proname = 'mandate_replace_data_version'"
            " UNION ALL SELECT tablename FROM pg_tables WHERE tablename = 'mandate_data_version'"
        )
    assert await run_sql(url, [leftovers]) == [[]]
    # Writes to what the triggers watched go on as before.
    await run_sql(url, ["UPDATE users SET name = 'Ann Smith' WHERE id = 1", "DELETE FROM recovery_codes"])
    assert await run_sql(url, ["SELECT name FROM users WHERE id = 1"]) == [[("Ann Smith",)]]
