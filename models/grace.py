"""Grace periods: how long a user bound to 2FA without it goes on as before (API.md "Grace periods").

A user's grace runs from the first login or request of theirs while bound and unenrolled (their
`grace_periods` row, which only their own requests write) for the shortest grace period among the
switched-on accounts that bind them (models/binding.py carries each binding's). It is worked out
afresh on every request, from what the caller's one statement reads (models/callers.py), a
login's or a batch of listed users' (`standings`): a shortened period, or a new switch with a
shorter one or none, binds at the next request. The start is forgotten when the user is seen
enrolled or unbound, so a later switch starts a new grace.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mandate.models.binding import bound_ctes
from mandate.models.sql import as_datetime, fetch, in_list
from mandate.models.tables import TWO_FACTOR_ENABLED_SQL, GracePeriod

MAX_GRACE_PERIOD_HOURS = 8760  # a year

# The shortest grace among the bindings of `bound_to_two_factor` (bound_ctes) of the user `u`,
# read only while they have no 2FA: NULL when nothing binds them, and for an enrolled user, whom
# no binding holds (Standing.held). A column of a statement that includes those CTEs and reads
# the users table as `u`. PostgreSQL runs a CASE's branch, and the CTEs only it reads, only when
# the branch is taken, so a request of an enrolled user walks no tree
# (tests/test_caller_statement.py).
HOLDING_GRACE_SQL = (
    f"CASE WHEN {TWO_FACTOR_ENABLED_SQL} THEN NULL"
    " ELSE (SELECT MIN(b.grace_hours) FROM bound_to_two_factor b WHERE b.user_id = u.id) END"
)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a user stands towards 2FA, as one statement read it."""

    enrolled: bool
    grace_hours: int | None      # the shortest grace of the switches that bind them; None: unbound, or enrolled
    started_at: datetime | None  # first seen bound without 2FA; None: not seen so (or forgotten)

    @classmethod
    def from_db(cls, enrolled, grace_hours, started_at) -> Standing:
        return cls(bool(enrolled), None if grace_hours is None else int(grace_hours), as_datetime(started_at))

    @property
    def held(self) -> bool:
        """Must set up 2FA: bound without it, in grace or past it."""
        return not self.enrolled and self.grace_hours is not None

    @property
    def deadline(self) -> datetime | None:
        """When their grace ends (passed or not); None without one: free, no grace, or not yet seen."""
        if not self.held or not self.grace_hours or self.started_at is None:
            return None
        return self.started_at + timedelta(hours=self.grace_hours)

    def must_enrol(self, now: datetime) -> bool:
        """Rule 2 holds for them: bound without 2FA, with no grace or past its deadline (a user
        not seen before starts their grace now)."""
        if not self.held:
            return False
        if not self.grace_hours:
            return True
        deadline = self.deadline
        return deadline is not None and now >= deadline


async def keep(user_id: int, standing: Standing, now: datetime) -> Standing:
    """Records the start of a user's grace when first seen held, and forgets it when seen free:
    a write on those requests alone. Their standing as it is from here."""
    if standing.held and standing.started_at is None:
        # Two first requests at once: one row, the other's start dropped (ON CONFLICT DO NOTHING).
        await GracePeriod.bulk_create([GracePeriod(user_id=user_id, started_at=now)], ignore_conflicts=True)
        return replace(standing, started_at=now)
    if not standing.held and standing.started_at is not None:
        await GracePeriod.filter(user_id=user_id).delete()
        return replace(standing, started_at=None)
    return standing


async def standings(user_ids: list[int]) -> dict[int, Standing]:
    """These users' standings: one statement, whatever their number and the size of the trees."""
    if not user_ids:
        return {}
    ctes, uses = bound_ctes(in_list(user_ids))
    rows = await fetch(
        f"""
        WITH RECURSIVE {ctes}
        SELECT u.id, {TWO_FACTOR_ENABLED_SQL} AS enrolled, g.started_at,
               {HOLDING_GRACE_SQL} AS grace_hours
        FROM users u LEFT JOIN grace_periods g ON g.user_id = u.id
        WHERE u.id IN ({in_list(user_ids)})
        """,
        list(user_ids) * uses + list(user_ids),
    )
    return {row["id"]: Standing.from_db(row["enrolled"], row["grace_hours"], row["started_at"]) for row in rows}


async def login_standing(user_id: int, now: datetime) -> Standing:
    """A login's look at its user (the first login while held starts their grace)."""
    standing = (await standings([user_id]))[user_id]
    return await keep(user_id, standing, now)
