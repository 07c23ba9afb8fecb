"""Counts over the whole database, for the operator's dashboards (gql/metrics.py formats them)."""

from __future__ import annotations

from dataclasses import dataclass

from mandate.models.sql import fetch


@dataclass(frozen=True)
class AccountCounts:
    accounts: int
    enforced: int       # under enforcement: switched on there or on an ancestor
    enforced_here: int  # whose own switch is on


async def account_counts() -> AccountCounts:
    """How many accounts there are, and how many are under enforcement: one statement."""
    rows = await fetch(
        """
        WITH RECURSIVE under(id) AS (
            SELECT id FROM accounts WHERE enforced
            UNION
            SELECT a.id FROM accounts a JOIN under ON a.parent_id = under.id
        )
        SELECT (SELECT COUNT(*) FROM accounts) AS accounts,
               (SELECT COUNT(*) FROM under) AS enforced,
               (SELECT COUNT(*) FROM accounts WHERE enforced) AS enforced_here
        """
    )
    row = rows[0]
    return AccountCounts(int(row["accounts"]), int(row["enforced"]), int(row["enforced_here"]))
