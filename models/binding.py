"""Who must use 2FA: a user bound by enforcement, from what they reach.

A user must use 2FA when an account they reach is enforced: an enforced account lies on the path
from what they reach to the root (walk up from their roles and sites), or, for a role, anywhere in
the subtree below it (walk up from the enforced accounts). Written once, as SQL that any statement
can include (`bound_ctes`): the caller's own statement (models/callers.py), a login's and the
batch of users a query shows (`users_bound_to_two_factor`, models/grace.py). Each binding carries
the grace period of the switch that makes it (the shortest one counts: models/grace.py).
"""

from __future__ import annotations

from mandate.models.sql import fetch, in_list


def bound_ctes(users: str) -> tuple[str, int]:
    """Common table expressions for `WITH RECURSIVE`, ending in
    `bound_to_two_factor(user_id, grace_hours)`: those of the users `users` (an SQL list or
    subquery) who must use 2FA, a row for each grace period of the switched-on accounts that bind
    them. Returns the SQL and how many times `users` appears in it (its parameters repeat that
    many times)."""
    sql = f"""
        reached(user_id, id) AS (
            SELECT user_id, account_id FROM memberships WHERE user_id IN ({users})
            UNION
            SELECT sm.user_id, s.account_id FROM site_memberships sm JOIN sites s ON s.id = sm.site_id
            WHERE sm.user_id IN ({users})
            UNION
            SELECT reached.user_id, a.parent_id FROM accounts a JOIN reached ON a.id = reached.id
            WHERE a.parent_id IS NOT NULL
        ),
        above_enforced(id, grace_hours) AS (
            SELECT id, grace_period_hours FROM accounts WHERE enforced
            UNION
            SELECT a.parent_id, e.grace_hours FROM accounts a JOIN above_enforced e ON a.id = e.id
            WHERE a.parent_id IS NOT NULL
        ),
        bound_to_two_factor(user_id, grace_hours) AS (
            SELECT reached.user_id, a.grace_period_hours FROM reached JOIN accounts a ON a.id = reached.id
            WHERE a.enforced
            UNION
            SELECT m.user_id, e.grace_hours FROM memberships m JOIN above_enforced e ON e.id = m.account_id
            WHERE m.user_id IN ({users})
        )
    """
    return sql, 3


async def users_bound_to_two_factor(user_ids: list[int]) -> set[int]:
    """Of these users, those who must use 2FA: one statement, whatever the size of the trees."""
    if not user_ids:
        return set()
    ctes, uses = bound_ctes(in_list(user_ids))
    rows = await fetch(f"WITH RECURSIVE {ctes} SELECT user_id FROM bound_to_two_factor", list(user_ids) * uses)
    return {row["user_id"] for row in rows}


async def must_use_two_factor(user_id: int) -> bool:
    return user_id in await users_bound_to_two_factor([user_id])
