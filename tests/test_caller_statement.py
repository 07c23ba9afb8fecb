"""The caller's one statement walks the trees for a grace only when the caller has no 2FA.

Who must use 2FA takes two recursive walks (models/binding.py): up from what the user reaches,
and up from every enforced account to find the roles above them. Only a user without 2FA can be
held, so for an enrolled one (most callers, and every caller of an enforced tree once its users
have enrolled) the statement leaves both unrun: on the bench's data that was 1.0 ms of a 1.5 ms
statement on every request. Read from PostgreSQL's own account of the run (EXPLAIN ANALYZE: a
node never run shows no loops), for an enrolled caller and, as the control, a user in grace.
"""

from __future__ import annotations

import orjson
import pytest

from mandate.models import clock
from mandate.models.callers import SESSION_CALLER_SQL
from mandate.models.crypto import digest
from mandate.models.sql import fetch
from tests.support.databases import backend_of
from tests.support.enforcement import enforce_with_grace
from tests.support.people import enrolled
from tests.support.worlds import MANAGER, MEMBER

WALKS = {"reached", "above_enforced"}  # the CTEs of binding.py that recurse


def walks_run(plan: dict) -> dict[str, int]:
    """How many times each recursive walk of the statement ran, from EXPLAIN's JSON."""
    found: dict[str, int] = {}
    for node in plan.get("Plans", ()):
        name = node.get("Subplan Name", "")
        if name.startswith("CTE ") and name[4:] in WALKS:
            found[name[4:]] = node["Actual Loops"]
        for walk, loops in walks_run(node).items():
            found[walk] = found.get(walk, 0) + loops
    return found


async def walks_for(token: str) -> dict[str, int]:
    rows = await fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {SESSION_CALLER_SQL}", [digest(token), clock.now()])
    (explained,) = rows[0].values()
    explained = orjson.loads(explained) if isinstance(explained, str) else explained
    return walks_run(explained[0]["Plan"])


async def test_an_enrolled_caller_costs_no_walk_of_the_trees(api, clinic, clock, database_url):
    if backend_of(database_url) != "postgres":
        pytest.skip("PostgreSQL's EXPLAIN ANALYZE tells which parts of a statement ran")
    manager = (await enrolled(api, MANAGER, clock)).token
    await enforce_with_grace(api, manager, clinic, 48)  # the member is bound, in grace
    status, member = await api.login_token(MEMBER)
    assert status == "AUTHENTICATED"

    held = await walks_for(member)
    assert set(held) == WALKS and all(loops > 0 for loops in held.values()), held  # the control
    assert await walks_for(manager) == {walk: 0 for walk in WALKS}
