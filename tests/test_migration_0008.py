"""Migration 0008 (sessions keep their login's User-Agent), applied to a database at 0005 with a
live session in it, on each backend: the session stays as it was, with no User-Agent (null)."""

from __future__ import annotations

from mandate.models.crypto import digest, hash_password

from tests.support.api import PASSWORD
from tests.support.migrations import columns, database_at, migrate_to, run_sql

ROWS_AT_0005 = [
    "INSERT INTO users (id, email, name, password_hash, created_at) VALUES"
    f" (1, 'ann@example.org', 'Ann', '{hash_password(PASSWORD)}', '2026-11-01 10:00:00+00:00')",
    "INSERT INTO sessions (token_hash, user_id, kind, two_factor_passed, created_at, expires_at, client_address)"
    f" VALUES ('{digest('mdt_before')}', 1, 'full', FALSE, '2026-11-01 10:00:00+00:00',"
    " '2999-01-01 00:00:00+00:00', '203.0.113.7')",
]


async def test_sessions_opened_before_0008_stay_with_no_user_agent(database_url, tmp_path):
    async with database_at(database_url, tmp_path, "models.0005_totp_devices", ROWS_AT_0005) as url:
        assert "user_agent" not in await columns(url, "sessions")
        migrate_to(url, "models.0008_session_user_agent")
        assert "user_agent" in await columns(url, "sessions")
        [rows] = await run_sql(url, ["SELECT token_hash, client_address, user_agent, revoked_at FROM sessions"])
        assert rows == [(digest("mdt_before"), "203.0.113.7", None, None)]
