"""Visibility: which accounts, sites and roles a caller sees (API.md, "Words" and "Visibility")."""

from __future__ import annotations

import pytest

from mandate.models.tables import Membership

from tests.support.api import leaked
from tests.support.people import signed_in
from tests.support.worlds import (
    DENTAL,
    DENTAL_MANAGER,
    GROUP,
    GROUP_MANAGER,
    LAB,
    NEWCOMER,
    OTHER,
    PRACTICE,
    PRACTICE_MEMBER,
    SIBLING,
    SITE_MEMBER,
    under_group,
    vanished_account_id,
)


async def query(api, token: str, document: str, variables: dict | None = None) -> dict:
    r = await api.gql(document, variables, token=token)
    assert not r.errors, r.body
    return r.data


TOPS = "{ accounts { name viewerRole children { name } descendants { name } sites { name } } }"
ACCOUNT = "query($id: ID!) { account(id: $id) { name viewerRole parent { name } children { name } " \
          "descendants { name } sites { name } } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Account { name } " \
       "... on Site { name account { name } } } }"


async def roles_in_tree(api, token: str, top_id: str) -> dict[str, str | None]:
    """viewerRole across a tree, which must agree whether read in `descendants` or by `account(id)`."""
    data = await query(api, token, "query($id: ID!) { account(id: $id) { id name viewerRole "
                                   "descendants { id name viewerRole } } }", {"id": top_id})
    accounts = [data["account"], *data["account"]["descendants"]]
    for account in accounts:
        direct = await query(api, token, "query($id: ID!) { account(id: $id) { viewerRole } }", {"id": account["id"]})
        assert direct["account"]["viewerRole"] == account["viewerRole"], account["name"]
    return {a["name"]: a["viewerRole"] for a in accounts}


# `accounts`: the tops of the caller's trees.

async def test_group_manager_sees_the_group_only_with_its_children(api, ids):
    data = await query(api, await signed_in(api, GROUP_MANAGER), TOPS)
    assert [(a["name"], a["viewerRole"]) for a in data["accounts"]] == [(GROUP, "MANAGER")]
    assert sorted(c["name"] for c in data["accounts"][0]["children"]) == [PRACTICE, SIBLING]


async def test_member_of_two_sibling_practices_sees_both(api, ids, seed):
    await seed(under_group({PRACTICE: {"members": [NEWCOMER]}, SIBLING: {"members": [NEWCOMER]}}))
    data = await query(api, await signed_in(api, NEWCOMER), TOPS)
    assert sorted((a["name"], a["viewerRole"]) for a in data["accounts"]) == [
        (PRACTICE, "MEMBER"), (SIBLING, "MEMBER")
    ]


async def test_member_of_a_group_and_of_its_child_sees_only_the_group(api, ids, seed):
    await seed(under_group({GROUP: {"members": [NEWCOMER]}, DENTAL: {"members": [NEWCOMER]}}))
    data = await query(api, await signed_in(api, NEWCOMER), TOPS)
    assert [a["name"] for a in data["accounts"]] == [GROUP]


async def test_site_access_inside_a_reached_tree_adds_no_top(api, ids, seed):
    await seed(under_group({GROUP: {"members": [NEWCOMER]},
                              PRACTICE: {"sites": [{"name": "Leeds Annex", "members": [NEWCOMER]}]}}))
    data = await query(api, await signed_in(api, NEWCOMER), TOPS)
    assert [a["name"] for a in data["accounts"]] == [GROUP]


# `account(id)`: NOT_FOUND outside the caller's reach, exactly as for no account at all.

async def test_account_in_another_tree_is_not_found_like_a_missing_one(api, ids, seed):
    gone = await vanished_account_id(api, seed)
    token = await signed_in(api, PRACTICE_MEMBER)
    answers = [await api.gql(ACCOUNT, {"id": account_id}, token=token)
               for account_id in (ids[OTHER], ids[SIBLING], gone)]
    assert [r.code for r in answers] == ["NOT_FOUND"] * 3
    assert len({r.errors[0]["message"] for r in answers}) == 1
    assert [r.data for r in answers] == [{"account": None}] * 3
    assert leaked(answers[0], OTHER) == [] and leaked(answers[1], SIBLING) == []


async def test_lost_membership_hides_the_account_from_the_next_request(api, ids):
    token = await signed_in(api, PRACTICE_MEMBER)
    assert (await query(api, token, ACCOUNT, {"id": ids[PRACTICE]}))["account"]["name"] == PRACTICE
    await Membership.filter(user__email=PRACTICE_MEMBER).delete()  # as another process would
    r = await api.gql(ACCOUNT, {"id": ids[PRACTICE]}, token=token)
    assert (r.code, r.data) == ("NOT_FOUND", {"account": None})
    assert (await query(api, token, TOPS))["accounts"] == []


# `viewerRole`: the effective role, the strongest on the account or above it.

async def test_group_manager_is_manager_of_every_account_below(api, ids):
    roles = await roles_in_tree(api, await signed_in(api, GROUP_MANAGER), ids[GROUP])
    assert roles == {GROUP: "MANAGER", PRACTICE: "MANAGER", DENTAL: "MANAGER", LAB: "MANAGER", SIBLING: "MANAGER"}


async def test_manager_role_on_a_child_outranks_a_member_role_above(api, ids, seed):
    await seed(under_group({GROUP: {"members": [NEWCOMER]}, PRACTICE: {"managers": [NEWCOMER]}}))
    roles = await roles_in_tree(api, await signed_in(api, NEWCOMER), ids[GROUP])
    assert roles == {GROUP: "MEMBER", PRACTICE: "MANAGER", DENTAL: "MANAGER", LAB: "MANAGER", SIBLING: "MEMBER"}


async def test_member_role_on_a_child_does_not_lower_a_manager_role_above(api, ids, seed):
    await seed(under_group({DENTAL: {"members": [GROUP_MANAGER]}}))
    roles = await roles_in_tree(api, await signed_in(api, GROUP_MANAGER), ids[GROUP])
    assert roles[DENTAL] == roles[LAB] == "MANAGER"


# `parent` and `descendants`.

async def test_parent_is_null_where_the_caller_cannot_reach_it(api, ids):
    member = await query(api, await signed_in(api, PRACTICE_MEMBER), ACCOUNT, {"id": ids[PRACTICE]})
    assert member["account"]["parent"] is None
    manager = await query(api, await signed_in(api, GROUP_MANAGER), ACCOUNT, {"id": ids[PRACTICE]})
    assert manager["account"]["parent"] == {"name": GROUP}


async def test_descendants_are_the_whole_subtree_flat_parents_first(api, ids):
    token = await signed_in(api, GROUP_MANAGER)
    data = await query(api, token, "query($id: ID!) { account(id: $id) { descendants { name parent { name } } } }",
                       {"id": ids[GROUP]})
    descendants = data["account"]["descendants"]
    assert sorted(a["name"] for a in descendants) == sorted([PRACTICE, SIBLING, DENTAL, LAB])
    seen = [GROUP]
    for account in descendants:
        assert account["parent"]["name"] in seen, descendants
        seen.append(account["name"])


async def test_descendants_of_a_child_stop_at_its_subtree(api, ids):
    data = await query(api, await signed_in(api, DENTAL_MANAGER), TOPS)
    assert [(a["name"], [d["name"] for d in a["descendants"]]) for a in data["accounts"]] == [(DENTAL, [LAB])]


# A site-only member: the site's account, narrowed to their sites.

async def test_site_only_member_sees_the_sites_account_narrowed_to_their_sites(api, ids):
    token = await signed_in(api, SITE_MEMBER)
    narrowed = {"name": PRACTICE, "viewerRole": None, "children": [], "descendants": [],
                "sites": [{"name": "Leeds Street"}]}
    assert (await query(api, token, TOPS))["accounts"] == [narrowed]
    assert (await query(api, token, ACCOUNT, {"id": ids[PRACTICE]}))["account"] == {**narrowed, "parent": None}


async def test_site_only_member_cannot_reach_other_accounts_of_the_tree(api, ids):
    token = await signed_in(api, SITE_MEMBER)
    for name in (GROUP, DENTAL, LAB, SIBLING):
        r = await api.gql(ACCOUNT, {"id": ids[name]}, token=token)
        assert (r.code, r.data) == ("NOT_FOUND", {"account": None}), name


# `node(id)`.

async def test_node_finds_reachable_accounts_and_sites(api, ids):
    token = await signed_in(api, PRACTICE_MEMBER)
    account = await query(api, token, NODE, {"id": ids[DENTAL]})
    assert account["node"] == {"__typename": "Account", "id": ids[DENTAL], "name": DENTAL}
    site = await query(api, token, NODE, {"id": ids["Leeds Annex"]})
    assert site["node"] == {"__typename": "Site", "id": ids["Leeds Annex"], "name": "Leeds Annex",
                            "account": {"name": PRACTICE}}


@pytest.mark.parametrize("name", [OTHER, "South Street", GROUP, "Group Office", SIBLING, "York Street"])
async def test_node_outside_the_callers_reach_is_not_found(api, ids, name):
    r = await api.gql(NODE, {"id": ids[name]}, token=await signed_in(api, PRACTICE_MEMBER))
    assert (r.code, r.data) == ("NOT_FOUND", {"node": None})
    assert leaked(r, name) == []


async def test_site_only_member_finds_only_their_own_sites_by_node(api, ids):
    token = await signed_in(api, SITE_MEMBER)
    site = await query(api, token, "query($id: ID!) { node(id: $id) { ... on Site { name account { name sites { name } "
                                   "children { name } } } } }", {"id": ids["Leeds Street"]})
    assert site["node"] == {"name": "Leeds Street", "account": {
        "name": PRACTICE, "sites": [{"name": "Leeds Street"}], "children": []}}
    assert (await query(api, token, NODE, {"id": ids[PRACTICE]}))["node"]["name"] == PRACTICE
    r = await api.gql(NODE, {"id": ids["Leeds Annex"]}, token=token)
    assert (r.code, r.data) == ("NOT_FOUND", {"node": None})
    assert leaked(r, "Leeds Annex") == []


# `me.memberships`.

async def test_me_memberships_list_each_account_and_role(api, ids, seed):
    await seed(under_group({GROUP: {"members": [NEWCOMER]}, PRACTICE: {"managers": [NEWCOMER]}}))
    data = await query(api, await signed_in(api, NEWCOMER), "{ me { memberships { role account { id name } } } }")
    assert sorted((m["account"]["name"], m["account"]["id"], m["role"]) for m in data["me"]["memberships"]) == [
        (PRACTICE, ids[PRACTICE], "MANAGER"), (GROUP, ids[GROUP], "MEMBER"),
    ]


async def test_site_access_is_not_a_membership(api, ids):
    data = await query(api, await signed_in(api, SITE_MEMBER), "{ me { memberships { role account { name } } } }")
    assert data["me"]["memberships"] == []
