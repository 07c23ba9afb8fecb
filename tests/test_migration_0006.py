"""Migration 0006 (grace periods), applied to a database at 0005 with accounts in it, on each
backend: every switch made before it keeps rule 2 as it was (a grace period of 0 hours), and no
user starts in grace."""

from __future__ import annotations

from tests.support.migrations import columns, database_at, migrate_to, run_sql

ROWS_AT_0005 = [
    "INSERT INTO users (id, email, name, password_hash, created_at) VALUES"
    " (1, 'ann@example.org', 'Ann', NULL, '2026-11-01 10:00:00+00:00')",
    "INSERT INTO accounts (id, name, enforced, enforcement_changed_at, enforcement_changed_by_id) VALUES"
    " (1, 'Group', TRUE, '2026-11-02 09:00:00+00:00', 1)",
    "INSERT INTO accounts (id, name, parent_id, enforced) VALUES (2, 'Clinic', 1, FALSE)",
]


async def test_switches_made_before_0006_have_no_grace_period(database_url, tmp_path):
    async with database_at(database_url, tmp_path, "models.0005_totp_devices", ROWS_AT_0005) as url:
        migrate_to(url, "models.0006_grace_periods")
        assert "grace_period_hours" in await columns(url, "accounts")
        accounts, graces = await run_sql(url, [
            "SELECT id, enforced, grace_period_hours FROM accounts ORDER BY id",
            "SELECT COUNT(*) FROM grace_periods",
        ])
        assert [(a, bool(e), g) for a, e, g in accounts] == [(1, True, 0), (2, False, 0)]
        assert graces == [(0,)]
