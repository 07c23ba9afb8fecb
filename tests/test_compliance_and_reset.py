"""A manager's view of who is bound (`twoFactorCompliance`) and their help for a member who lost
their device (`resetMemberTwoFactor`)."""

from __future__ import annotations

import pytest

from mandate.models.tables import User
from tests.support.api import Api, Result, leaked
from tests.support.audit import audit_events
from tests.support.enforcement import enforce
from tests.support.people import enrolled, signed_in, with_two_factor
from tests.support.worlds import (
    DENTAL,
    DENTAL_MANAGER,
    DENTAL_MEMBER,
    DENTAL_SITE_MEMBER,
    GROUP,
    GROUP_MANAGER,
    GROUP_MEMBER,
    LAB_MEMBER,
    NEWCOMER,
    OTHER,
    OTHER_MANAGER,
    PRACTICE,
    PRACTICE_MANAGER,
    PRACTICE_MEMBER,
    SIBLING,
    SIBLING_MANAGER,
    SITE_MEMBER,
    under_group,
)

COMPLIANCE = """
query($id: ID!) { account(id: $id) { name twoFactorCompliance { totalUsers enrolledUsers pendingUsers { email } } } }"""
RESET = """
mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { id email twoFactorEnabled } }"""

# Whom each account's enforcement binds in the seeded trees (a role on it, above or below it,
# and site access inside its subtree).
BOUND_BY_PRACTICE = {
    PRACTICE_MANAGER, PRACTICE_MEMBER, SITE_MEMBER, DENTAL_MANAGER, DENTAL_MEMBER, DENTAL_SITE_MEMBER,
    LAB_MEMBER, GROUP_MANAGER, GROUP_MEMBER,
}
BOUND_BY_DENTAL = BOUND_BY_PRACTICE - {SITE_MEMBER}  # Leeds Street is a site of the parent


async def compliance(api: Api, token: str, account_id: str) -> dict:
    r = await api.gql(COMPLIANCE, {"id": account_id}, token=token)
    assert not r.errors, r.body
    found = r.data["account"]["twoFactorCompliance"]
    return {**found, "pendingUsers": {u["email"] for u in found["pendingUsers"]}}


async def user_id(api: Api, email: str) -> str:
    r = await api.login(email)
    assert not r.errors, r.body
    return r.data["login"]["user"]["id"]


async def reset(api: Api, token: str, account_id: str, member_id: str) -> Result:
    return await api.gql(RESET, {"a": account_id, "u": member_id}, token=token)


async def two_factor_enabled(api: Api, token: str) -> bool:
    r = await api.gql("{ me { twoFactorEnabled } }", token=token)
    assert not r.errors, r.body
    return r.data["me"]["twoFactorEnabled"]


# twoFactorCompliance

@pytest.mark.parametrize("caller", [PRACTICE_MEMBER, SITE_MEMBER])
async def test_compliance_is_for_managers_only(api, ids, caller):
    r = await api.gql(COMPLIANCE, {"id": ids[PRACTICE]}, token=await signed_in(api, caller))
    assert (r.code, r.data) == ("FORBIDDEN", {"account": None})
    assert leaked(r, PRACTICE_MANAGER, LAB_MEMBER) == []


@pytest.mark.parametrize("account, manager, bound", [
    pytest.param(PRACTICE, PRACTICE_MANAGER, BOUND_BY_PRACTICE, id="practice"),
    pytest.param(DENTAL, DENTAL_MANAGER, BOUND_BY_DENTAL, id="dental"),
])
async def test_compliance_counts_everyone_bound_and_nobody_else(api, ids, account, manager, bound):
    found = await compliance(api, await signed_in(api, manager), ids[account])
    assert found == {"totalUsers": len(bound), "enrolledUsers": 0, "pendingUsers": bound}


async def test_compliance_counts_a_user_with_several_ways_in_once(api, ids, seed):
    await seed(under_group({
        PRACTICE: {"members": [NEWCOMER], "sites": [{"name": "Leeds Annex", "members": [NEWCOMER]}]},
        DENTAL: {"managers": [NEWCOMER]},
    }))
    found = await compliance(api, await signed_in(api, PRACTICE_MANAGER), ids[PRACTICE])
    assert found["totalUsers"] == len(BOUND_BY_PRACTICE) + 1
    assert found["pendingUsers"] == BOUND_BY_PRACTICE | {NEWCOMER}


async def test_compliance_follows_enrolment(api, ids):
    token = await signed_in(api, PRACTICE_MANAGER)
    await enrolled(api, LAB_MEMBER)
    await enrolled(api, SITE_MEMBER)
    found = await compliance(api, token, ids[PRACTICE])
    assert found == {"totalUsers": len(BOUND_BY_PRACTICE), "enrolledUsers": 2,
                     "pendingUsers": BOUND_BY_PRACTICE - {LAB_MEMBER, SITE_MEMBER}}


# resetMemberTwoFactor

async def test_reset_removes_the_members_two_factor_and_ends_their_sessions(api, ids, clock):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    member = await enrolled(api, PRACTICE_MEMBER)
    second_session = await api.full_login(PRACTICE_MEMBER, member.secret, clock)

    r = await reset(api, manager, ids[PRACTICE], await user_id(api, PRACTICE_MEMBER))
    assert not r.errors, r.body
    assert r.data["resetMemberTwoFactor"] == {
        "id": await user_id(api, PRACTICE_MEMBER), "email": PRACTICE_MEMBER, "twoFactorEnabled": False,
    }
    for token in (member.token, second_session):
        assert (await api.gql("{ me { email } }", token=token)).code == "UNAUTHENTICATED"
    token = await signed_in(api, PRACTICE_MEMBER)  # the password alone, again
    me = await api.gql("{ me { twoFactorEnabled recoveryCodesRemaining } }", token=token)
    assert me.data["me"] == {"twoFactorEnabled": False, "recoveryCodesRemaining": 0}


async def test_reset_members_old_recovery_codes_stay_dead_after_enrolling_again(api, ids):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    old_codes = (await enrolled(api, PRACTICE_MEMBER)).recovery_codes
    assert not (await reset(api, manager, ids[PRACTICE], await user_id(api, PRACTICE_MEMBER))).errors
    await enrolled(api, PRACTICE_MEMBER)
    status, token = await api.login_token(PRACTICE_MEMBER)
    assert status == "TWO_FACTOR_REQUIRED"
    assert (await api.verify(token, old_codes[0])).code == "INVALID_CODE"


@pytest.mark.parametrize("member", [SITE_MEMBER, LAB_MEMBER])
async def test_reset_reaches_site_members_and_members_below(api, ids, member):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    token = await with_two_factor(api, member)
    r = await reset(api, manager, ids[PRACTICE], await user_id(api, member))
    assert (r.errors, r.data["resetMemberTwoFactor"]["twoFactorEnabled"]) == ([], False)
    assert (await api.gql("{ me { email } }", token=token)).code == "UNAUTHENTICATED"


async def test_reset_member_under_enforcement_must_enrol_again(api, ids):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    await enforce(api, manager, ids[PRACTICE])
    await enrolled(api, PRACTICE_MEMBER)
    assert not (await reset(api, manager, ids[PRACTICE], await user_id(api, PRACTICE_MEMBER))).errors
    assert (await api.login_token(PRACTICE_MEMBER))[0] == "ENROLMENT_REQUIRED"


async def test_reset_by_a_manager_without_two_factor_needs_their_setup_first(api, ids):
    member = await enrolled(api, PRACTICE_MEMBER)
    r = await reset(api, await signed_in(api, PRACTICE_MANAGER), ids[PRACTICE], await user_id(api, PRACTICE_MEMBER))
    assert (r.code, r.data) == ("TWO_FACTOR_SETUP_REQUIRED", None)
    assert await two_factor_enabled(api, member.token) is True


@pytest.mark.parametrize("caller, account", [
    pytest.param(GROUP_MEMBER, PRACTICE, id="member-above"),
    pytest.param(SITE_MEMBER, PRACTICE, id="site-member"),
    pytest.param(SIBLING_MANAGER, PRACTICE, id="manager-of-a-sibling"),
    pytest.param(OTHER_MANAGER, PRACTICE, id="manager-of-another-tree"),
])
async def test_reset_by_a_non_manager_is_forbidden(api, ids, caller, account):
    member = await enrolled(api, PRACTICE_MEMBER)
    token = await with_two_factor(api, caller)
    r = await reset(api, token, ids[account], await user_id(api, PRACTICE_MEMBER))
    assert (r.code, r.data) == ("FORBIDDEN", None)
    assert await two_factor_enabled(api, member.token) is True


async def test_reset_of_a_user_outside_the_account_does_not_tell_them_from_no_user(api, ids):
    member = await enrolled(api, PRACTICE_MEMBER)
    member_id = await user_id(api, PRACTICE_MEMBER)
    gone_id = await user_id(api, NEWCOMER)
    await User.filter(email=NEWCOMER).delete()
    token = await with_two_factor(api, SIBLING_MANAGER)
    outside = await reset(api, token, ids[SIBLING], member_id)
    unknown = await reset(api, token, ids[SIBLING], gone_id)
    assert outside.code == "NOT_FOUND"
    assert (outside.code, outside.errors[0]["message"]) == (unknown.code, unknown.errors[0]["message"])
    assert leaked(outside, PRACTICE_MEMBER) == []
    assert await two_factor_enabled(api, member.token) is True


@pytest.mark.parametrize("caller, account, member", [
    pytest.param(DENTAL_MANAGER, DENTAL, PRACTICE_MEMBER, id="member-reaches-the-parent"),
    pytest.param(PRACTICE_MANAGER, PRACTICE, GROUP_MEMBER, id="member-reaches-the-group"),
])
async def test_reset_needs_a_manager_of_every_account_the_member_reaches(api, ids, caller, account, member):
    target = await enrolled(api, member)
    r = await reset(api, await with_two_factor(api, caller), ids[account], await user_id(api, member))
    assert (r.code, r.data) == ("FORBIDDEN", None)
    assert await two_factor_enabled(api, target.token) is True


async def test_reset_of_a_member_who_also_reaches_another_tree_is_forbidden(api, ids, seed):
    await seed(under_group({PRACTICE: {"members": [NEWCOMER]}}))
    await seed({"accounts": [{"name": OTHER, "members": [NEWCOMER]}]})
    target = await enrolled(api, NEWCOMER)
    for caller, account in ((PRACTICE_MANAGER, PRACTICE), (GROUP_MANAGER, GROUP)):
        r = await reset(api, await with_two_factor(api, caller), ids[account], await user_id(api, NEWCOMER))
        assert (r.code, r.data) == ("FORBIDDEN", None), caller
    assert await two_factor_enabled(api, target.token) is True


async def test_reset_by_a_manager_of_every_account_reached_succeeds(api, ids, seed):
    await seed(under_group({PRACTICE: {"members": [NEWCOMER]}, SIBLING: {"members": [NEWCOMER]}}))
    await enrolled(api, NEWCOMER)
    r = await reset(api, await with_two_factor(api, GROUP_MANAGER), ids[PRACTICE], await user_id(api, NEWCOMER))
    assert not r.errors, r.body
    assert r.data["resetMemberTwoFactor"]["twoFactorEnabled"] is False


async def test_reset_is_audited_as_two_factor_reset(api, ids):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    await enrolled(api, PRACTICE_MEMBER)
    assert not (await reset(api, manager, ids[PRACTICE], await user_id(api, PRACTICE_MEMBER))).errors
    events = [e for e in await audit_events(api, manager, ids[PRACTICE]) if e["action"] == "TWO_FACTOR_RESET"]
    assert [(e["actor"], e["subject"]) for e in events] == [({"email": PRACTICE_MANAGER}, {"email": PRACTICE_MEMBER})]


async def test_a_manager_cannot_reset_their_own_two_factor(api, ids):
    """Rule 3 holds for managers too: their own 2FA goes only by disableTotp, with a code."""
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    r = await reset(api, manager, ids[PRACTICE], await user_id(api, PRACTICE_MANAGER))
    assert (r.code, r.data) == ("FORBIDDEN", None)
    assert await two_factor_enabled(api, manager) is True
