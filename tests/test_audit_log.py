"""The audit log (rule 6) as managers read it: `Account.auditEvents`, newest first, paged."""

from __future__ import annotations

import base64

import pytest

from tests.support.api import Api, CLIENT_ADDRESS, leaked, timestamp
from tests.support.enforcement import enforce
from tests.support.people import enrolled, signed_in, with_two_factor
from tests.support.worlds import (
    OTHER,
    OTHER_MANAGER,
    OTHER_MEMBER,
    PRACTICE,
    PRACTICE_MANAGER,
    PRACTICE_MEMBER,
    SIBLING,
    SIBLING_MANAGER,
    SITE_MEMBER,
)
from tests.support.audit import audit_events, audit_page

SWITCHES = ("ENFORCEMENT_ON", "ENFORCEMENT_OFF")


async def toggle(api: Api, token: str, account_id: str, times: int, clock) -> None:
    """Switches enforcement on and off `times` times, a minute apart."""
    for i in range(times):
        clock.advance(60)
        await enforce(api, token, account_id, on=i % 2 == 0)


async def test_enforcement_switches_are_logged_with_actor_time_and_address(api, ids, clock):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    await enforce(api, token, ids[PRACTICE])
    switched_on = clock.time()
    clock.advance(120)
    await enforce(api, token, ids[PRACTICE], on=False)

    switches = [e for e in await audit_events(api, token, ids[PRACTICE]) if e["action"] in SWITCHES]
    assert [(e["action"], e["actor"], e["clientAddress"]) for e in switches] == [
        ("ENFORCEMENT_OFF", {"email": PRACTICE_MANAGER}, CLIENT_ADDRESS),
        ("ENFORCEMENT_ON", {"email": PRACTICE_MANAGER}, CLIENT_ADDRESS),
    ]
    assert abs(timestamp(switches[1]["at"]) - switched_on) < 30
    assert abs(timestamp(switches[0]["at"]) - (switched_on + 120)) < 30


async def test_audit_log_is_newest_first(api, ids, clock):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    await toggle(api, token, ids[PRACTICE], 3, clock)
    events = await audit_events(api, token, ids[PRACTICE])
    assert [e["action"] for e in events if e["action"] in SWITCHES] == [
        "ENFORCEMENT_ON", "ENFORCEMENT_OFF", "ENFORCEMENT_ON"
    ]
    times = [timestamp(e["at"]) for e in events]
    assert times == sorted(times, reverse=True) and times[0] > times[-1]


@pytest.mark.parametrize("page_size", [1, 3, 4])
async def test_audit_pages_follow_end_cursor_without_overlap_or_gap(api, ids, clock, page_size):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    await toggle(api, token, ids[PRACTICE], 7, clock)  # with the enrolment: 8 events or more
    r = await audit_page(api, token, ids[PRACTICE], first=200)
    everything = [(e["cursor"], e["node"]) for e in r.data["account"]["auditEvents"]["edges"]]
    assert len(everything) >= 8

    paged, after, has_next = [], None, True
    while has_next and len(paged) <= len(everything):  # a repeating page must not loop forever
        r = await audit_page(api, token, ids[PRACTICE], first=page_size, after=after)
        assert not r.errors, r.body
        connection = r.data["account"]["auditEvents"]
        edges = [(e["cursor"], e["node"]) for e in connection["edges"]]
        has_next, after = connection["pageInfo"]["hasNextPage"], connection["pageInfo"]["endCursor"]
        assert len(edges) == (page_size if has_next else len(everything) - len(paged))
        assert after == edges[-1][0]
        paged += edges
    assert paged == everything


async def test_audit_log_first_page_is_capped_by_first(api, ids, clock):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    await toggle(api, token, ids[PRACTICE], 4, clock)
    r = await audit_page(api, token, ids[PRACTICE], first=2)
    connection = r.data["account"]["auditEvents"]
    assert [e["node"]["action"] for e in connection["edges"]] == ["ENFORCEMENT_OFF", "ENFORCEMENT_ON"]
    assert connection["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("caller", [PRACTICE_MEMBER, SITE_MEMBER])
async def test_audit_log_is_for_managers_only(api, ids, caller):
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    token = await with_two_factor(api, caller)
    r = await audit_page(api, token, ids[PRACTICE])
    assert (r.code, r.data) == ("FORBIDDEN", {"account": None})
    assert leaked(r, "ENFORCEMENT_ON", PRACTICE_MANAGER) == []


async def test_manager_of_another_tree_does_not_see_its_events(api, ids):
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    await with_two_factor(api, PRACTICE_MEMBER)
    token = await with_two_factor(api, OTHER_MANAGER)
    await enforce(api, token, ids[OTHER])

    events = await audit_events(api, token, ids[OTHER])
    assert [e["action"] for e in events if e["action"] in SWITCHES] == ["ENFORCEMENT_ON"]
    people = {(e[role] or {}).get("email") for e in events for role in ("actor", "subject")}
    assert people <= {OTHER_MANAGER, OTHER_MEMBER, None}
    r = await audit_page(api, token, ids[PRACTICE])
    assert (r.code, r.data) == ("NOT_FOUND", {"account": None})


async def test_manager_of_a_sibling_does_not_see_its_switches(api, ids):
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    token = await with_two_factor(api, SIBLING_MANAGER)
    events = await audit_events(api, token, ids[SIBLING])
    assert [e for e in events if e["action"] in SWITCHES] == []
    assert all((e["actor"] or {}).get("email") != PRACTICE_MANAGER for e in events)


@pytest.mark.parametrize("cursor", [
    pytest.param("not a cursor", id="garbage"),
    pytest.param(base64.b64encode(b"audit:x").decode(), id="not-a-number"),
    pytest.param(None, id="an-account-id"),
])
async def test_bad_after_cursor_is_bad_user_input(api, ids, cursor):
    token = await signed_in(api, PRACTICE_MANAGER)
    r = await audit_page(api, token, ids[PRACTICE], after=cursor or ids[PRACTICE])
    assert r.code == "BAD_USER_INPUT"
    assert r.data == {"account": None}


async def test_negative_first_is_bad_user_input(api, ids):
    r = await audit_page(api, await signed_in(api, PRACTICE_MANAGER), ids[PRACTICE], first=-1)
    assert r.code == "BAD_USER_INPUT"



async def test_a_user_in_two_trees_brings_no_event_of_one_tree_into_the_other(api, ids, clock):
    """Tree A (South Care) resets its member's 2FA, adds a role and switches enforcement; then
    the member joins tree B (Leeds Practice). B's manager sees the member's own events and B's,
    never A's: not the reset with A's manager's name, not A's role change, not A's switch."""
    from mandate.gql.ids import from_global_id
    from mandate.models.memberships import add_member
    from mandate.models.user_admin import find_user
    from mandate.models.tables import Role

    member = await enrolled(api, OTHER_MEMBER)
    other_manager = await with_two_factor(api, OTHER_MANAGER)
    me = await api.gql("{ me { id } }", token=member.token)
    reset = await api.gql(
        "mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { id } }",
        {"a": ids[OTHER], "u": me.data["me"]["id"]}, token=other_manager,
    )
    assert not reset.errors, reset.body
    await enforce(api, other_manager, ids[OTHER])
    user = await find_user(OTHER_MEMBER)
    await add_member(from_global_id(ids[OTHER])[1], user, Role.MANAGER)  # MEMBER_ROLE_CHANGED in A
    clock.advance(60)
    await add_member(from_global_id(ids[PRACTICE])[1], user, Role.MEMBER)  # MEMBER_ADDED in B

    seen_by_b = await audit_events(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    concerning = [(e["action"], e["actor"]) for e in seen_by_b if e["subject"] == {"email": OTHER_MEMBER}]
    assert ("MEMBER_ADDED", None) in concerning  # B's own event
    assert ("TOTP_CONFIRMED", {"email": OTHER_MEMBER}) in concerning  # the member's own, tied to no account
    assert not [a for a, _ in concerning if a in ("TWO_FACTOR_RESET", "MEMBER_ROLE_CHANGED")], concerning
    assert "ENFORCEMENT_ON" not in [e["action"] for e in seen_by_b if e["actor"] == {"email": OTHER_MANAGER}]
    assert OTHER_MANAGER not in str(seen_by_b)

    # A's manager still reads all of A's.
    seen_by_a = {e["action"] for e in await audit_events(api, other_manager, ids[OTHER])}
    assert {"TWO_FACTOR_RESET", "MEMBER_ROLE_CHANGED", "ENFORCEMENT_ON"} <= seen_by_a
