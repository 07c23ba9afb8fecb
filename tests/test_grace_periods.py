"""Grace periods (API.md "Grace periods"): a switch's grace period lets a user it binds go on
without 2FA from their first login or request while bound, until the shortest grace of the
switches that bind them has run; then rule 2 holds, for open sessions too. Worked out on every
request: a shortened grace or a new switch binds at once, and a user seen unbound loses their
start. Time moves with the test clock.

The Clinic (one account, a manager, a member) and the trees of tests/support/worlds.py.
"""

from __future__ import annotations

import pytest

from mandate.models.tables import Account, AuditEvent
from tests.support.api import Api, Login, answered, error_code, timestamp
from tests.support.audit import audit_events
from tests.support.documents import ACCOUNTS, ME
from tests.support.enforcement import enforce_with_grace, set_grace
from tests.support.people import enrolled, signed_in
from tests.support.worlds import (
    GROUP,
    GROUP_MANAGER,
    MANAGER,
    MEMBER,
    PRACTICE,
    PRACTICE_MANAGER,
    PRACTICE_MEMBER,
)

HOUR = 3600
DEADLINE = "{ me { twoFactorDeadline } }"
PENDING = """query($id: ID!) { account(id: $id) { twoFactorCompliance {
  totalUsers enrolledUsers pendingUsers { email twoFactorDeadline } } } }"""


@pytest.fixture
async def manager_login(api, clinic, clock) -> Login:
    """The Clinic's manager, enrolled: a session that passed 2FA, and their secret."""
    return await enrolled(api, MANAGER, clock)


@pytest.fixture
def manager(manager_login) -> str:
    return manager_login.token


async def deadline_of(api: Api, token: str) -> float | None:
    r = await api.gql(DEADLINE, token=token)
    assert not r.errors, r.body
    value = r.data["me"]["twoFactorDeadline"]
    return timestamp(value) if value is not None else None


async def reads_accounts(api: Api, token: str) -> bool:
    """The token is a full session's: it reads the caller's trees (else ENROLMENT_REQUIRED)."""
    return await answered(api, token, ACCOUNTS, "ENROLMENT_REQUIRED")


async def switch_events(api: Api, token: str, account_id: str) -> list[str]:
    """The account's log of its own switch and grace period, newest first."""
    return [e["action"] for e in await audit_events(api, token, account_id)
            if e["action"] in ("ENFORCEMENT_ON", "ENFORCEMENT_OFF", "GRACE_PERIOD_CHANGED")]


async def in_grace(api: Api, email: str) -> str:
    """A login of a bound user without 2FA that answers AUTHENTICATED (in grace); its token."""
    status, token = await api.login_token(email)
    assert status == "AUTHENTICATED", status
    return token


# --- Setting it --------------------------------------------------------------------------------


async def test_set_enforcement_sets_the_grace_period_and_shows_it(api, clinic, manager):
    enforcement = await enforce_with_grace(api, manager, clinic, 48)
    assert enforcement["enforced"] and enforcement["gracePeriodHours"] == 48
    assert enforcement["changedBy"] == {"email": MANAGER}


async def test_the_grace_period_defaults_to_none_and_each_call_sets_it(api, clinic, manager):
    await enforce_with_grace(api, manager, clinic, 48)
    r = await api.gql(
        "mutation($a: ID!) { setEnforcement(accountId: $a, enforced: true) "
        "{ twoFactorEnforcement { gracePeriodHours } } }", {"a": clinic}, token=manager)
    assert r.data["setEnforcement"]["twoFactorEnforcement"] == {"gracePeriodHours": 0}, r.body
    assert (await enforce_with_grace(api, manager, clinic, None))["gracePeriodHours"] == 0  # null: the default


@pytest.mark.parametrize("hours", [-1, 8761, 2**31 - 1, 2**31])
async def test_a_grace_period_outside_0_to_8760_hours_is_bad_user_input_and_writes_nothing(api, clinic, manager, hours):
    before = await AuditEvent.all().count()
    r = await set_grace(api, manager, clinic, True, hours)
    assert error_code(r, "BAD_USER_INPUT"), r.body
    assert await Account.filter(enforced=True).count() == 0
    assert await Account.filter(grace_period_hours__gt=0).count() == 0
    assert await AuditEvent.all().count() == before


async def test_the_longest_grace_period_is_a_year(api, clinic, manager):
    assert (await enforce_with_grace(api, manager, clinic, 8760))["gracePeriodHours"] == 8760


async def test_changing_only_the_grace_period_is_audited_and_updates_changed_at(api, clinic, manager, clock):
    first = await enforce_with_grace(api, manager, clinic, 48)
    clock.advance(60)
    second = await enforce_with_grace(api, manager, clinic, 24)
    assert second["gracePeriodHours"] == 24 and timestamp(second["changedAt"]) > timestamp(first["changedAt"])
    assert await switch_events(api, manager, clinic) == ["GRACE_PERIOD_CHANGED", "ENFORCEMENT_ON"]


async def test_a_call_that_changes_nothing_writes_nothing(api, clinic, manager, clock):
    # As for a switch set to what it already is: no new changedAt, no audit event.
    first = await enforce_with_grace(api, manager, clinic, 48)
    clock.advance(60)
    again = await enforce_with_grace(api, manager, clinic, 48)
    assert again["changedAt"] == first["changedAt"]
    assert await switch_events(api, manager, clinic) == ["ENFORCEMENT_ON"]


# --- Meeting it --------------------------------------------------------------------------------


async def test_a_user_in_grace_logs_in_authenticated_and_reads_as_any_full_session(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 48)
    seen = clock.time()
    token = await in_grace(api, MEMBER)
    assert await reads_accounts(api, token)
    me = await api.gql("{ me { twoFactorRequired twoFactorEnabled memberships { role } } }", token=token)
    assert me.data["me"] == {"twoFactorRequired": True, "twoFactorEnabled": False,
                             "memberships": [{"role": "MEMBER"}]}, me.body
    assert abs(await deadline_of(api, token) - (seen + 48 * HOUR)) < 5


async def test_the_deadline_runs_from_the_first_login_not_each_one(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 48)
    first = await deadline_of(api, await in_grace(api, MEMBER))
    clock.advance(5 * HOUR)
    assert await deadline_of(api, await in_grace(api, MEMBER)) == first


async def test_after_the_deadline_login_requires_enrolment(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 48)
    await in_grace(api, MEMBER)
    clock.advance(48 * HOUR + 1)
    status, token = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    assert not await reads_accounts(api, token)
    assert not (await api.gql(ME, token=token)).errors  # rule 2's five fields, as before
    # The deadline is not among them: rule 2 stays exact.
    refused = await api.gql(DEADLINE, token=token)
    assert refused.code == "ENROLMENT_REQUIRED" and refused.data == {"me": {"twoFactorDeadline": None}}


async def test_an_open_session_is_held_at_its_first_request_after_the_deadline(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 2)
    token = await in_grace(api, MEMBER)
    clock.advance(2 * HOUR - 60)
    assert await reads_accounts(api, token)
    clock.advance(61)
    assert not await reads_accounts(api, token)


async def test_a_shortened_grace_period_binds_at_the_next_request(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 10)
    token = await in_grace(api, MEMBER)
    clock.advance(3 * HOUR)
    await enforce_with_grace(api, manager, clinic, 2)
    assert not await reads_accounts(api, token)  # not when the old ten hours run out


async def test_a_lengthened_grace_period_lets_a_held_user_back_in(api, clinic, manager, clock):
    await enforce_with_grace(api, manager, clinic, 1)
    token = await in_grace(api, MEMBER)
    clock.advance(2 * HOUR)
    assert not await reads_accounts(api, token)
    await enforce_with_grace(api, manager, clinic, 24)
    assert await reads_accounts(api, token)


async def test_a_new_switch_with_no_grace_binds_a_user_in_grace_at_once(api, ids, clock):
    practice_manager = (await enrolled(api, PRACTICE_MANAGER, clock)).token
    group_manager = (await enrolled(api, GROUP_MANAGER, clock)).token
    await enforce_with_grace(api, practice_manager, ids[PRACTICE], 72)
    token = await in_grace(api, PRACTICE_MEMBER)
    await enforce_with_grace(api, group_manager, ids[GROUP], 0)
    assert not await reads_accounts(api, token)
    assert (await api.login_token(PRACTICE_MEMBER))[0] == "ENROLMENT_REQUIRED"


async def test_the_shortest_grace_of_the_switches_that_bind_a_user_counts(api, ids, clock):
    practice_manager = (await enrolled(api, PRACTICE_MANAGER, clock)).token
    group_manager = (await enrolled(api, GROUP_MANAGER, clock)).token
    await enforce_with_grace(api, practice_manager, ids[PRACTICE], 72)
    seen = clock.time()
    token = await in_grace(api, PRACTICE_MEMBER)
    clock.advance(3 * HOUR)
    await enforce_with_grace(api, group_manager, ids[GROUP], 6)  # shorter, from the same start
    assert abs(await deadline_of(api, token) - (seen + 6 * HOUR)) < 5
    clock.advance(3 * HOUR + 1)
    assert not await reads_accounts(api, token)


async def test_switching_off_frees_a_user_mid_grace_and_forgets_their_start(api, clinic, manager_login, clock):
    await enforce_with_grace(api, manager_login.token, clinic, 2)
    token = await in_grace(api, MEMBER)
    clock.advance(HOUR)
    await enforce_with_grace(api, manager_login.token, clinic, 0, on=False)
    assert await reads_accounts(api, token) and await deadline_of(api, token) is None
    clock.advance(5 * HOUR)
    manager = await api.full_login(MANAGER, manager_login.secret, clock)
    await enforce_with_grace(api, manager, clinic, 2)
    seen = clock.time()
    token = await in_grace(api, MEMBER)  # a new grace, not the old one run out
    assert abs(await deadline_of(api, token) - (seen + 2 * HOUR)) < 5


async def test_switching_off_gives_an_enrolment_only_session_a_full_sessions_rights(api, clinic, manager):
    await enforce_with_grace(api, manager, clinic, 0)
    status, token = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    assert not await reads_accounts(api, token)
    await enforce_with_grace(api, manager, clinic, 0, on=False)
    assert await reads_accounts(api, token)  # no session stuck at enrolment once unbound


async def test_a_lengthened_grace_gives_an_enrolment_only_session_a_full_sessions_rights(api, clinic, manager):
    await enforce_with_grace(api, manager, clinic, 0)
    status, token = await api.login_token(MEMBER)
    assert status == "ENROLMENT_REQUIRED"
    await enforce_with_grace(api, manager, clinic, 24)
    assert await reads_accounts(api, token)


async def test_enrolling_forgets_the_start_so_a_reset_member_gets_a_new_grace(api, clinic, manager_login, clock):
    await enforce_with_grace(api, manager_login.token, clinic, 2)
    login = await api.enrol(await in_grace(api, MEMBER))
    assert await deadline_of(api, login.token) is None  # enrolled: no deadline
    member_id = (await api.gql("{ me { id } }", token=login.token)).data["me"]["id"]
    clock.advance(5 * HOUR)  # past the first grace
    manager = await api.full_login(MANAGER, manager_login.secret, clock)
    reset = await api.gql(
        "mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { email } }",
        {"a": clinic, "u": member_id}, token=manager)
    assert not reset.errors, reset.body
    seen = clock.time()
    token = await in_grace(api, MEMBER)
    assert abs(await deadline_of(api, token) - (seen + 2 * HOUR)) < 5


async def test_the_deadline_is_null_for_users_nobody_binds(api, clinic, clock):
    assert await deadline_of(api, await signed_in(api, MEMBER)) is None


# --- Managers' view ----------------------------------------------------------------------------


async def test_compliance_lists_users_in_grace_with_their_deadlines(api, ids, clock):
    practice_manager = (await enrolled(api, PRACTICE_MANAGER, clock)).token
    await enforce_with_grace(api, practice_manager, ids[PRACTICE], 24)
    seen = clock.time()
    await in_grace(api, PRACTICE_MEMBER)
    r = await api.gql(PENDING, {"id": ids[PRACTICE]}, token=practice_manager)
    assert not r.errors, r.body
    pending = {u["email"]: u["twoFactorDeadline"] for u in r.data["account"]["twoFactorCompliance"]["pendingUsers"]}
    assert abs(timestamp(pending.pop(PRACTICE_MEMBER)) - (seen + 24 * HOUR)) < 5
    assert pending and set(pending.values()) == {None}  # bound, not yet seen
    assert PRACTICE_MANAGER not in pending


async def test_a_caller_who_may_not_switch_learns_nothing_of_the_range(api, clinic, manager_login, clock):
    """Who may not switch this account is FORBIDDEN, whatever the hours asked (rule 1 comes first)."""
    member = await enrolled(api, MEMBER, clock)
    assert error_code(await set_grace(api, member.token, clinic, True, 9999), "FORBIDDEN")
    assert error_code(await set_grace(api, member.token, clinic, True, -1), "FORBIDDEN")
