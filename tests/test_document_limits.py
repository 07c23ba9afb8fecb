"""What one document may carry (API.md "Second factors": at most one second-factor attempt and
one `login`, refused before anything runs; "Visibility": the depth limit lets a frontend's tree
query and introspection through) and the limits on depth and aliases.
"""

from __future__ import annotations

import pytest

from mandate.models.tables import AuditEvent, Session, Throttle, TotpDevice
from tests.support import people
from tests.support.api import Api, Login
from tests.support.codes import totp_now

EMAIL = "ann@example.org"
WRONG = "000000"


@pytest.fixture
async def ann(api: Api, seed) -> Login:
    """Ann, who manages North (North > Dental > Leeds, a site at each level) and has TOTP on;
    a full session of hers, with her secret."""
    await seed({
        "users": [{"email": EMAIL}],
        "accounts": [{
            "name": "North", "managers": [EMAIL], "sites": [{"name": "York"}],
            "children": [{"name": "Dental", "sites": [{"name": "Hull"}],
                          "children": [{"name": "Leeds", "sites": [{"name": "Headingley"}]}]}],
        }],
    })
    _, token = await api.login_token(EMAIL)
    return await api.enrol(token)


@pytest.fixture
async def password_only(api: Api, ann: Login, clock) -> str:
    """A token of Ann's that has passed the password only (on a fresh TOTP step)."""
    clock.advance(30)
    return await people.password_only(api, EMAIL)


async def footprint() -> tuple:
    """All that an attempt leaves behind: audit rows, throttle counts, sessions, used TOTP steps."""
    return (
        await AuditEvent.all().count(),
        sorted(await Throttle.all().values_list("key", "failures")),
        sorted(await Session.all().values_list("id", "kind", "two_factor_passed", "revoked_at", "totp_pending_secret")),
        sorted(await TotpDevice.all().values_list("user_id", "last_step", "secret")),
    )


async def assert_refused_before_running(api: Api, query: str, token: str | None = None, **kwargs) -> None:
    before = await footprint()
    result = await api.gql(query, token=token, **kwargs)
    assert result.code == "BAD_REQUEST", result.body
    assert result.data is None, result.body
    assert await footprint() == before


async def test_two_second_factor_attempts_under_aliases_are_refused(api, ann, password_only):
    query = f"""mutation {{
      first: verifyTwoFactor(code: "{WRONG}") {{ status }}
      second: verifyTwoFactor(code: "{totp_now(ann.secret)}") {{ status token }}
    }}"""
    await assert_refused_before_running(api, query, password_only)
    still = await api.gql("{ me { email } }", token=password_only)
    assert still.code == "TWO_FACTOR_REQUIRED"


async def test_verify_and_confirm_in_one_document_are_refused(api, password_only):
    query = f"""mutation {{
      verifyTwoFactor(code: "{WRONG}") {{ status }}
      confirmTotp(code: "{WRONG}") {{ recoveryCodes }}
    }}"""
    await assert_refused_before_running(api, query, password_only)


async def test_disable_and_regenerate_in_one_document_are_refused(api, ann):
    query = f"""mutation {{
      regenerateRecoveryCodes(code: "{WRONG}")
      disableTotp(code: "{WRONG}") {{ twoFactorEnabled }}
    }}"""
    await assert_refused_before_running(api, query, ann.token)


async def test_a_fragment_spread_twice_counts_as_two_attempts(api, password_only):
    query = f"""mutation {{ ...Attempt ... on Mutation {{ ...Attempt }} }}
      fragment Attempt on Mutation {{ verifyTwoFactor(code: "{WRONG}") {{ status }} }}"""
    await assert_refused_before_running(api, query, password_only)


async def test_two_logins_in_one_document_are_refused(api, ann):
    query = f"""mutation {{
      first: login(email: "{EMAIL}", password: "wrong-password") {{ status }}
      second: login(email: "{EMAIL}", password: "password-123") {{ status token }}
    }}"""
    await assert_refused_before_running(api, query)


async def test_two_operations_each_with_one_attempt_are_refused(api, password_only):
    query = f"""
      mutation First {{ verifyTwoFactor(code: "{WRONG}") {{ status }} }}
      mutation Second {{ verifyTwoFactor(code: "123456") {{ status }} }}"""
    await assert_refused_before_running(api, query, password_only, operation_name="First")


async def test_one_second_factor_attempt_is_accepted(api, ann, password_only):
    result = await api.verify(password_only, totp_now(ann.secret))
    assert not result.errors, result.body
    assert result.data["verifyTwoFactor"]["status"] == "AUTHENTICATED"


async def test_one_login_and_one_second_factor_attempt_together_are_accepted(api, ann, password_only):
    query = f"""mutation {{
      login(email: "{EMAIL}", password: "password-123") {{ status }}
      verifyTwoFactor(code: "{totp_now(ann.secret)}") {{ status }}
    }}"""
    result = await api.gql(query, token=password_only)
    assert not result.errors, result.body
    assert result.data == {"login": {"status": "TWO_FACTOR_REQUIRED"}, "verifyTwoFactor": {"status": "AUTHENTICATED"}}


# Depth and aliases.

TREE = """{ accounts { id name viewerRole
  twoFactorEnforcement { enforced source { id name } }
  sites { id name }
  children { id name
    twoFactorEnforcement { enforced source { id name } }
    sites { id name }
    children { id name
      sites { id name account { id } }
      twoFactorEnforcement { enforced enforcedHere source { id name } changedBy { name } }
    }
  }
} }"""


async def test_a_frontends_three_level_tree_query_passes_the_depth_limit(api, ann):
    result = await api.gql(TREE, token=ann.token)
    assert not result.errors, result.body
    grandchild = result.data["accounts"][0]["children"][0]["children"][0]
    assert grandchild["name"] == "Leeds"
    assert grandchild["sites"][0]["name"] == "Headingley"


async def test_a_pathologically_deep_query_is_refused(api, ann):
    leeds = await api.account_id(ann.token, "Leeds")
    query = "query($id: ID!) { node(id: $id) { ... on Account { " + "parent { " * 20 + "id" + " }" * 20 + " } } }"
    result = await api.gql(query, {"id": leeds}, token=ann.token)
    assert result.code == "GRAPHQL_VALIDATION_FAILED"
    assert result.data is None


async def test_too_many_aliases_are_refused(api, ann):
    query = "{ " + " ".join(f"a{n}: accounts {{ descendants {{ id }} }}" for n in range(100)) + " }"
    result = await api.gql(query, token=ann.token)
    assert result.code == "GRAPHQL_VALIDATION_FAILED"
    assert result.data is None


# Tokens: one limit, wherever the document is read.

MAX_TOKENS = 5000
ME = "{ me { email } }"  # 6 tokens


def padded(tokens: int) -> str:
    """ME grown to this many tokens with comments (graphql-core counts each comment)."""
    return ME + "\n" + "# padding\n" * (tokens - 6)


async def test_a_document_of_as_many_tokens_as_the_limit_is_answered(api, ann):
    result = await api.gql(padded(MAX_TOKENS), token=ann.token)
    assert not result.errors, result.body
    assert result.data == {"me": {"email": EMAIL}}


async def test_a_document_over_the_token_limit_is_refused_as_unparsable(api, ann):
    result = await api.gql(padded(MAX_TOKENS + 1), token=ann.token)
    assert result.code == "GRAPHQL_PARSE_FAILED", result.body
    assert "more than 5000 tokens" in result.errors[0]["message"]
    assert result.data is None


async def test_a_document_over_the_token_limit_is_unparsable_whatever_operation_it_names(api, ann):
    """The operation is looked for in the document within the same limit: past it, the answer
    is the parse's, not "no such operation"."""
    result = await api.gql(padded(MAX_TOKENS + 1), token=ann.token, operation_name="Nowhere")
    assert result.code == "GRAPHQL_PARSE_FAILED", result.body
    assert result.data is None
