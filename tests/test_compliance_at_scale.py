"""Compliance on big accounts: counts from one aggregate, `pendingUsers` in pages (issue 4).

Without `first`, `pendingUsers` is the whole list, as API.md's contract has it; with `first`,
a page by email after the user whose id is `after`.
"""

from __future__ import annotations

import pytest

from tests.support.api import Api

PAGE = """query($id: ID!, $first: Int, $after: ID) { account(id: $id) { twoFactorCompliance {
  pendingUsers(first: $first, after: $after) { id email } } } }"""
COUNTS = "query($id: ID!) { account(id: $id) { twoFactorCompliance { totalUsers enrolledUsers } } }"
MANAGER = "grace@example.org"


def organisation(members: int) -> dict:
    emails = [f"member{n:04d}@example.org" for n in range(members)]
    return {
        "users": [{"email": MANAGER}] + [{"email": e} for e in emails],
        "accounts": [{
            "name": "Group", "managers": [MANAGER],
            "children": [{"name": "Practice", "members": emails[: members // 2],
                          "sites": [{"name": "Surgery", "members": emails[members // 2:]}]}],
        }],
    }


async def signed_in_manager(api: Api, seed, members: int) -> tuple[str, str]:
    await seed(organisation(members))
    login = await api.enrol((await api.login_token(MANAGER))[1])
    return login.token, await api.account_id(login.token, "Group")


async def page(api: Api, token: str, account: str, first: int | None = None, after: str | None = None):
    return await api.gql(PAGE, {"id": account, "first": first, "after": after}, token=token)


def emails(result) -> list[str]:
    assert not result.errors, result.body
    return [u["email"] for u in result.data["account"]["twoFactorCompliance"]["pendingUsers"]]


async def test_pages_walk_the_whole_pending_list_in_email_order(api, seed):
    token, account = await signed_in_manager(api, seed, 7)
    everyone = emails(await page(api, token, account))
    assert everyone == sorted(everyone) and len(everyone) == 7  # the manager has 2FA: not pending

    walked, after = [], None
    while True:
        result = await page(api, token, account, first=3, after=after)
        got = result.data["account"]["twoFactorCompliance"]["pendingUsers"]
        assert len(got) <= 3
        if not got:
            break
        walked += [u["email"] for u in got]
        after = got[-1]["id"]
    assert walked == everyone


async def test_someone_enrolling_between_pages_shifts_nobody(api, seed):
    token, account = await signed_in_manager(api, seed, 6)
    first_page = (await page(api, token, account, first=2)).data["account"]["twoFactorCompliance"]["pendingUsers"]
    await api.enrol((await api.login_token(first_page[0]["email"]))[1])
    rest = emails(await page(api, token, account, first=10, after=first_page[-1]["id"]))
    assert rest == [f"member{n:04d}@example.org" for n in range(2, 6)]


async def test_a_page_after_a_user_the_account_does_not_bind_is_empty(api, seed):
    token, account = await signed_in_manager(api, seed, 3)
    await seed({"users": [{"email": "stranger@example.org"}],
                "accounts": [{"name": "Elsewhere", "members": ["stranger@example.org"]}]})
    stranger = await api.gql("{ me { id } }", token=(await api.login_token("stranger@example.org"))[1])
    assert emails(await page(api, token, account, first=5, after=stranger.data["me"]["id"])) == []


@pytest.mark.parametrize("first, after, argument", [
    (-1, None, "first"), (1001, None, "first"), (2, "not-an-id", "after"),
])
async def test_bad_paging_arguments_are_refused(api, seed, first, after, argument):
    token, account = await signed_in_manager(api, seed, 2)
    result = await page(api, token, account, first=first, after=after)
    assert result.code == "BAD_USER_INPUT"
    assert result.errors[0]["extensions"]["argument"] == argument


async def test_an_account_id_is_not_a_user_cursor(api, seed):
    token, account = await signed_in_manager(api, seed, 2)
    result = await page(api, token, account, first=2, after=account)
    assert result.code == "BAD_USER_INPUT"


@pytest.mark.parametrize("members", [10, 400])
async def test_the_counts_are_one_aggregate_whatever_the_number_of_members(api, seed, statements, members):
    token, account = await signed_in_manager(api, seed, members)
    statements.clear()
    result = await api.gql(COUNTS, {"id": account}, token=token)
    assert result.data["account"]["twoFactorCompliance"] == {"totalUsers": members + 1, "enrolledUsers": 1}
    # the caller, the caller's roles and sites (2), the account's chain, the counts
    assert len(statements) == 5
    assert sum("COUNT(" in sql for sql in statements) == 1
