"""Enforcement: who may switch it (rule 1), what it covers (inheritance, rule 5), whom it binds
(who must use 2FA, also after gaining access later: rule 8), and what switching it off leaves
(rule 4).

The trees are those of tests/support/worlds.py (`ids` in conftest.py).
"""

from __future__ import annotations

import pytest

from mandate.gql.app import create_app
from mandate.models.tables import Account
from tests.support.api import Api, app_client, leaked, timestamp
from tests.support.codes import totp_now
from tests.support.enforcement import (
    enforce,
    enforced_accounts,
    enforcement_of,
    must_use_two_factor,
    set_enforcement,
)
from tests.support.people import enrolled, signed_in, with_two_factor
from tests.support.worlds import (
    DENTAL,
    DENTAL_MANAGER,
    DENTAL_MEMBER,
    DENTAL_SITE_MEMBER,
    GROUP,
    GROUP_MANAGER,
    GROUP_MEMBER,
    GROUP_SITE_MEMBER,
    LAB,
    LAB_MEMBER,
    NEWCOMER,
    OTHER,
    OTHER_MANAGER,
    OTHER_MEMBER,
    PRACTICE,
    PRACTICE_MANAGER,
    PRACTICE_MEMBER,
    SIBLING,
    SIBLING_MANAGER,
    SIBLING_MEMBER,
    SIBLING_SITE_MEMBER,
    SITE_MEMBER,
    under_group,
    vanished_account_id,
)

async def nothing_enforced(api: Api) -> bool:
    """As the group's manager (without 2FA, so free only while nothing in their tree is enforced)."""
    return await enforced_accounts(api, await signed_in(api, GROUP_MANAGER)) == set()


@pytest.fixture
async def other_server(database_url):
    """A second app on the same database, as another server process would be."""
    async with app_client(create_app(manage_database=False), port=40001) as http:
        yield Api(http)


# Rule 1: who may switch enforcement.

async def test_manager_without_two_factor_cannot_set_enforcement(api, ids):
    token = await signed_in(api, PRACTICE_MANAGER)
    r = await set_enforcement(api, token, ids[PRACTICE])
    assert r.code == "TWO_FACTOR_SETUP_REQUIRED"
    assert r.data is None
    assert await nothing_enforced(api)


async def test_manager_bound_to_enrol_cannot_set_enforcement(api, ids):
    await enforce(api, await with_two_factor(api, GROUP_MANAGER), ids[GROUP])
    status, token = await api.login_token(PRACTICE_MANAGER)
    assert status == "ENROLMENT_REQUIRED"
    r = await set_enforcement(api, token, ids[PRACTICE])
    # Rule 2: an enrolment-only token can do nothing but enrol, whatever the field.
    assert r.code == "ENROLMENT_REQUIRED"
    assert r.data is None


async def test_manager_session_without_second_factor_cannot_set_enforcement(api, ids):
    await with_two_factor(api, PRACTICE_MANAGER)
    status, password_only = await api.login_token(PRACTICE_MANAGER)
    assert status == "TWO_FACTOR_REQUIRED"
    r = await set_enforcement(api, password_only, ids[PRACTICE])
    # A password-only token may only verify or log out: the code says what to do next.
    assert r.code == "TWO_FACTOR_REQUIRED"
    assert r.data is None
    assert await nothing_enforced(api)


async def test_session_opened_before_enrolment_cannot_set_enforcement(api, ids):
    earlier = await signed_in(api, PRACTICE_MANAGER)
    await with_two_factor(api, PRACTICE_MANAGER)
    r = await set_enforcement(api, earlier, ids[PRACTICE])
    assert r.code == "UNAUTHENTICATED"  # rule 7: enrolling ended it
    assert await nothing_enforced(api)


async def test_manager_with_two_factor_sets_enforcement(api, ids):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    account = await enforce(api, token, ids[PRACTICE])
    assert account == {"id": ids[PRACTICE], "name": PRACTICE,
                       "twoFactorEnforcement": {"enforced": True, "enforcedHere": True}}
    assert await enforced_accounts(api, token) == {PRACTICE, DENTAL, LAB}


@pytest.mark.parametrize("two_factor", [False, True], ids=["without-2fa", "with-2fa"])
@pytest.mark.parametrize("caller", [
    pytest.param(PRACTICE_MEMBER, id="member-of-the-account"),
    pytest.param(SITE_MEMBER, id="site-member-of-the-account"),
    pytest.param(DENTAL_MANAGER, id="manager-of-a-child"),
    pytest.param(SIBLING_MANAGER, id="manager-of-a-sibling"),
    pytest.param(OTHER_MANAGER, id="manager-of-another-tree"),
])
async def test_non_manager_cannot_set_enforcement(api, ids, caller, two_factor):
    token = await (with_two_factor if two_factor else signed_in)(api, caller)
    r = await set_enforcement(api, token, ids[PRACTICE])
    assert r.code == "FORBIDDEN"
    assert r.data is None
    assert await nothing_enforced(api)


async def test_unknown_and_unreachable_accounts_are_forbidden_alike(api, ids, seed):
    gone = await vanished_account_id(api, seed)
    token = await with_two_factor(api, PRACTICE_MANAGER)
    unknown = await set_enforcement(api, token, gone)
    other_tree = await set_enforcement(api, token, ids[OTHER])
    sibling = await set_enforcement(api, token, ids[SIBLING])
    assert unknown.code == other_tree.code == sibling.code == "FORBIDDEN"
    assert unknown.errors[0]["message"] == other_tree.errors[0]["message"] == sibling.errors[0]["message"]
    assert other_tree.data is None and sibling.data is None
    assert await nothing_enforced(api)


@pytest.mark.parametrize("bad_id", ["not-an-id", "12345", ""])
async def test_malformed_account_id_is_bad_user_input(api, ids, bad_id):
    token = await with_two_factor(api, PRACTICE_MANAGER)
    r = await set_enforcement(api, token, bad_id)
    assert r.code == "BAD_USER_INPUT"
    assert r.data is None


# Inheritance, and what Enforcement shows.

async def test_enforcement_on_a_parent_enforces_children_and_grandchildren(api, ids):
    token = await with_two_factor(api, GROUP_MANAGER)
    await enforce(api, token, ids[GROUP])
    assert (await enforcement_of(api, token, ids[GROUP]))["source"] == {"id": ids[GROUP], "name": GROUP}
    for name in (PRACTICE, SIBLING, DENTAL, LAB):
        state = await enforcement_of(api, token, ids[name])
        assert (state["enforced"], state["enforcedHere"]) == (True, False), name
        assert state["source"] == {"id": ids[GROUP], "name": GROUP}, name


@pytest.mark.parametrize("enforced, enforcer, caller, account", [
    pytest.param(PRACTICE, PRACTICE_MANAGER, LAB_MEMBER, LAB, id="member-of-a-grandchild"),
    pytest.param(GROUP, GROUP_MANAGER, SITE_MEMBER, PRACTICE, id="site-member-of-a-child"),
    pytest.param(GROUP, GROUP_MANAGER, DENTAL_SITE_MEMBER, DENTAL, id="site-member-of-a-grandchild"),
])
async def test_source_is_shown_to_a_user_below_with_no_role_on_it(api, ids, enforced, enforcer, caller, account):
    await enforce(api, await with_two_factor(api, enforcer), ids[enforced])
    token = await with_two_factor(api, caller)
    r = await api.gql(
        "query($id: ID!) { account(id: $id) { twoFactorEnforcement { enforced enforcedHere "
        "source { id name viewerRole } } } }", {"id": ids[account]}, token=token,
    )
    assert not r.errors, r.body
    assert r.data["account"]["twoFactorEnforcement"] == {
        "enforced": True, "enforcedHere": False,
        "source": {"id": ids[enforced], "name": enforced, "viewerRole": None},
    }


@pytest.mark.parametrize("field", [
    "parent { name }", "children { name }", "descendants { name }", "sites { name }",
    "twoFactorEnforcement { changedBy { email } }", "twoFactorCompliance { pendingUsers { email } }",
    "auditEvents { edges { node { actor { email } } } }",
])
async def test_source_account_shows_nothing_but_id_and_name_to_a_member_below(api, ids, field):
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    token = await with_two_factor(api, LAB_MEMBER)
    r = await api.gql(
        f"query($id: ID!) {{ account(id: $id) {{ twoFactorEnforcement {{ source {{ id {field} }} }} }} }}",
        {"id": ids[LAB]}, token=token,
    )
    assert leaked(r, GROUP, DENTAL, "Leeds Street", PRACTICE_MANAGER, PRACTICE_MEMBER, DENTAL_MEMBER) == []
    assert r.errors == [] or r.code == "FORBIDDEN", r.body


async def test_changed_at_and_changed_by_describe_the_accounts_own_switch(api, ids, clock):
    token = await with_two_factor(api, GROUP_MANAGER)
    await enforce(api, token, ids[GROUP])
    switched_on = clock.time()
    group = await enforcement_of(api, token, ids[GROUP])
    assert group["changedBy"] == {"email": GROUP_MANAGER}
    assert abs(timestamp(group["changedAt"]) - switched_on) < 60
    practice = await enforcement_of(api, token, ids[PRACTICE])
    assert (practice["changedAt"], practice["changedBy"]) == (None, None)

    clock.advance(600)
    await enforce(api, token, ids[GROUP], on=False)
    group = await enforcement_of(api, token, ids[GROUP])
    assert group["enforced"] is False and group["changedBy"] == {"email": GROUP_MANAGER}
    assert timestamp(group["changedAt"]) - switched_on >= 600


async def test_own_switch_under_an_enforced_parent_makes_the_child_the_nearest_source(api, ids):
    await enforce(api, await with_two_factor(api, GROUP_MANAGER), ids[GROUP])
    token = await with_two_factor(api, PRACTICE_MANAGER)
    await enforce(api, token, ids[PRACTICE])
    practice = await enforcement_of(api, token, ids[PRACTICE])
    assert (practice["enforcedHere"], practice["source"]) == (True, {"id": ids[PRACTICE], "name": PRACTICE})
    assert practice["changedBy"] == {"email": PRACTICE_MANAGER}
    for name in (DENTAL, LAB):
        assert (await enforcement_of(api, token, ids[name]))["source"] == {"id": ids[PRACTICE], "name": PRACTICE}


# Rule 5: one account and its descendants, nothing else.

async def test_enforcement_touches_the_account_and_its_descendants_only(api, ids):
    group_manager = await with_two_factor(api, GROUP_MANAGER)
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    assert await enforced_accounts(api, group_manager) == {PRACTICE, DENTAL, LAB}
    assert await enforced_accounts(api, await with_two_factor(api, OTHER_MANAGER)) == set()
    token = await signed_in(api, SIBLING_MEMBER)
    assert await must_use_two_factor(api, token) is False


# Who must use 2FA once Leeds Practice is enforced.

@pytest.mark.parametrize("email, bound", [
    pytest.param(PRACTICE_MEMBER, True, id="member-of-the-enforced-account"),
    pytest.param(DENTAL_MEMBER, True, id="member-of-a-child"),
    pytest.param(LAB_MEMBER, True, id="member-of-a-grandchild"),
    pytest.param(GROUP_MANAGER, True, id="manager-of-an-ancestor"),
    pytest.param(GROUP_MEMBER, True, id="member-of-an-ancestor"),
    pytest.param(SITE_MEMBER, True, id="site-member-of-the-enforced-account"),
    pytest.param(DENTAL_SITE_MEMBER, True, id="site-member-of-a-descendant"),
    pytest.param(GROUP_SITE_MEMBER, False, id="site-member-of-the-parent"),
    pytest.param(SIBLING_MEMBER, False, id="member-of-a-sibling"),
    pytest.param(SIBLING_SITE_MEMBER, False, id="site-member-of-a-sibling"),
    pytest.param(OTHER_MEMBER, False, id="member-of-another-tree"),
])
async def test_who_must_use_two_factor(api, ids, email, bound):
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    status, token = await api.login_token(email)
    assert status == ("ENROLMENT_REQUIRED" if bound else "AUTHENTICATED")
    assert await must_use_two_factor(api, token) is bound


async def test_open_session_is_held_to_enrolment_from_its_next_request(api, ids):
    token = await signed_in(api, DENTAL_MEMBER)
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    r = await api.gql("{ accounts { name } }", token=token)
    assert r.code == "ENROLMENT_REQUIRED" and r.data is None
    assert await must_use_two_factor(api, token) is True


async def test_enforcement_switched_on_another_server_binds_from_the_next_request(api, ids, other_server):
    token = await signed_in(api, DENTAL_MEMBER)
    assert await must_use_two_factor(api, token) is False
    await enforce(other_server, await with_two_factor(other_server, PRACTICE_MANAGER), ids[PRACTICE])
    assert (await api.gql("{ accounts { name } }", token=token)).code == "ENROLMENT_REQUIRED"


async def _newcomer_is_bound_after(api, ids, grant) -> None:
    """The newcomer's open session is free, then `grant` gives access: bound from the next request."""
    await enforce(api, await with_two_factor(api, PRACTICE_MANAGER), ids[PRACTICE])
    token = await signed_in(api, NEWCOMER)
    assert await must_use_two_factor(api, token) is False
    await grant()
    assert await must_use_two_factor(api, token) is True
    assert (await api.gql("{ me { memberships { role } } }", token=token)).code == "ENROLMENT_REQUIRED"
    assert (await api.login_token(NEWCOMER))[0] == "ENROLMENT_REQUIRED"


async def test_new_membership_after_enforcement_binds_from_the_next_request(api, ids, seed):
    await _newcomer_is_bound_after(api, ids, lambda: seed(under_group({DENTAL: {"members": [NEWCOMER]}})))


async def test_new_site_access_after_enforcement_binds_from_the_next_request(api, ids, seed):
    await _newcomer_is_bound_after(api, ids, lambda: seed(under_group(
        {PRACTICE: {"sites": [{"name": "Leeds Annex", "members": [NEWCOMER]}]}}
    )))


async def test_account_moved_under_an_enforced_parent_binds_its_members(api, ids, seed):
    await seed({"accounts": [{"name": OTHER, "members": [NEWCOMER]}]})

    async def move_south_under_the_practice():
        practice = await Account.get(name=PRACTICE)
        await Account.filter(name=OTHER).update(parent_id=practice.id)

    await _newcomer_is_bound_after(api, ids, move_south_under_the_practice)


async def test_role_raised_after_login_holds_from_the_next_request(api, ids, seed):
    token = await with_two_factor(api, PRACTICE_MEMBER)
    assert (await set_enforcement(api, token, ids[PRACTICE])).code == "FORBIDDEN"
    await seed(under_group({PRACTICE: {"managers": [PRACTICE_MEMBER]}}))
    assert (await enforce(api, token, ids[PRACTICE]))["twoFactorEnforcement"]["enforced"] is True


# Rule 4: switching off removes nobody's 2FA.

async def test_switching_enforcement_off_keeps_everyones_two_factor(api, ids, clock):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    await enforce(api, manager, ids[PRACTICE])
    secret = (await enrolled(api, PRACTICE_MEMBER)).secret
    await enforce(api, manager, ids[PRACTICE], on=False)

    assert (await api.login_token(PRACTICE_MEMBER))[0] == "TWO_FACTOR_REQUIRED"
    token = await api.full_login(PRACTICE_MEMBER, secret, clock)
    r = await api.gql("{ me { twoFactorEnabled twoFactorRequired } }", token=token)
    assert r.data["me"] == {"twoFactorEnabled": True, "twoFactorRequired": False}


async def test_switching_enforcement_off_lets_users_disable_their_own_two_factor(api, ids, clock):
    manager = await with_two_factor(api, PRACTICE_MANAGER)
    await enforce(api, manager, ids[PRACTICE])
    member = await enrolled(api, PRACTICE_MEMBER)
    disable = "mutation($c: String!) { disableTotp(code: $c) { twoFactorEnabled } }"
    refused = await api.gql(disable, {"c": totp_now(member.secret, 1)}, token=member.token)
    assert refused.code == "TWO_FACTOR_ENFORCED"

    await enforce(api, manager, ids[PRACTICE], on=False)
    clock.advance(30)
    r = await api.gql(disable, {"c": totp_now(member.secret, 1)}, token=member.token)
    assert not r.errors, r.body
    assert r.data["disableTotp"] == {"twoFactorEnabled": False}


async def test_switching_one_account_off_keeps_users_bound_through_another(api, ids):
    manager = await with_two_factor(api, GROUP_MANAGER)
    await enforce(api, manager, ids[PRACTICE])
    await enforce(api, manager, ids[SIBLING])
    await enforce(api, manager, ids[PRACTICE], on=False)
    assert (await api.login_token(GROUP_MEMBER))[0] == "ENROLMENT_REQUIRED"  # reaches York Practice too
    assert (await api.login_token(SIBLING_MEMBER))[0] == "ENROLMENT_REQUIRED"
    assert (await api.login_token(PRACTICE_MEMBER))[0] == "AUTHENTICATED"
