"""Validation that cannot explode (API.md "Limits on work": whatever the document, its answer or
refusal comes within 2 seconds of work, and /healthz keeps being answered meanwhile).

Documents within the 5,000-token limit whose validation would walk every path through their
fragments (2**60 for sixty fragments each spreading the next twice), or compare every pair of
fields merged into one selection, are answered or refused in time linear in the document.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest

from mandate.gql import documents, validation
from tests.support.api import Api

MEMBER = "mia@example.org"
LEVELS = 60
GUARD_SECONDS = 10


@pytest.fixture
async def token(api: Api, seed) -> str:
    """A full session of Mia's, a plain member of Group (one child account)."""
    await seed({
        "users": [{"email": MEMBER}],
        "accounts": [{"name": "Group", "members": [MEMBER], "children": [{"name": "Practice"}]}],
    })
    status, token = await api.login_token(MEMBER)
    assert status == "AUTHENTICATED"
    return token


def _interrupt(*_args) -> None:
    raise TimeoutError(f"no answer within {GUARD_SECONDS} s: validation explodes again")


async def guarded(request):
    """The request's result, or a failure (not a hung suite) if it takes over GUARD_SECONDS.

    Validation runs synchronously on the event loop, where `asyncio.wait_for` alone cannot
    interrupt it: an alarm signal can (a guard only; no test asserts on wall-clock time)."""
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, GUARD_SECONDS)
    try:
        return await asyncio.wait_for(request, GUARD_SECONDS)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fragments_walked(monkeypatch) -> Counter:
    """How many times each fold (depth, aliases, root fields) walks each fragment."""
    walked: Counter = Counter()

    def enter_fragment(fold, definition) -> None:
        walked[type(fold).__name__, definition.name.value] += 1

    monkeypatch.setattr(documents.SelectionFold, "enter_fragment", enter_fragment)
    return walked


def doubling(leaf: str, levels: int = LEVELS, on: str = "Account", spread: str = "...F{next} ...F{next}") -> str:
    """Fragments F0..F{levels}, each spreading the next one twice (about 700 tokens): 2**levels
    paths from F0 to the last, which selects `leaf`."""
    return " ".join(
        f"fragment F{n} on {on} {{ {spread.format(next=n + 1)} }}" for n in range(levels)
    ) + f" fragment F{levels} on {on} {{ {leaf} }}"


def refused_at_validation(result, message_part: str) -> None:
    assert result.status == 200, result.body
    assert result.code == "GRAPHQL_VALIDATION_FAILED", result.body
    assert message_part in result.errors[0]["message"], result.body
    assert result.data is None, result.body


async def test_the_colleagues_document_is_answered_while_healthz_answers(api, token, client, fragments_walked):
    query = "{ accounts { ...F0 } } " + doubling("id name")
    result, health = await guarded(asyncio.gather(api.gql(query, token=token), client.get("/healthz")))
    assert not result.errors, result.body
    assert [a["name"] for a in result.data["accounts"]] == ["Group"]
    assert health.status_code == 200
    assert fragments_walked and max(fragments_walked.values()) == 1  # each fragment once per fold
    assert len({name for _, name in fragments_walked}) <= LEVELS + 1


async def test_depth_through_doubling_fragments_is_refused_with_the_depth_limits_error(api, token, fragments_walked):
    # Each level nests a field: 40 levels deep, through 2**40 paths (each a depth error before).
    query = "query Deep { accounts { ...F0 } } " + doubling("id", 40, spread="parent {{ ...F{next} }} parent {{ ...F{next} }}")
    result = await guarded(api.gql(query, token=token))
    refused_at_validation(result, "'Deep' exceeds maximum operation depth of 15")
    assert max(fragments_walked.values()) == 1


async def test_the_depth_limit_counts_sixteen_levels_and_no_more(api, token):
    def nested(levels: int) -> str:
        # `accounts` and levels-1 `parent`s, through one fragment per level.
        return "{ accounts { ...F1 } } " + " ".join(
            f"fragment F{n} on Account {{ id parent {{ ...F{n + 1} }} }}" for n in range(1, levels)
        ) + f" fragment F{levels} on Account {{ id }}"

    assert not (await api.gql(nested(15), token=token)).errors  # 15 fields nested below `accounts`
    refused_at_validation(await api.gql(nested(16), token=token), "exceeds maximum operation depth of 15")


async def test_introspection_fields_still_do_not_count_towards_depth(api, token):
    # 20 levels below `__type`: not counted, as before (graphql-core bounds introspection's lists).
    query = '{ __type(name: "Account") { ' + "ofType { " * 20 + "name" + " }" * 20 + " } }"
    result = await api.gql(query, token=token)
    assert not result.errors, result.body
    assert result.data == {"__type": {"ofType": None}}


async def test_aliases_through_doubling_fragments_are_counted_once_per_spread(api, token, fragments_walked):
    query = "{ accounts { ...F0 } } " + doubling("renamed: id")
    result = await guarded(api.gql(query, token=token))
    refused_at_validation(result, f"{2 ** LEVELS} aliases found. Allowed: 30")
    assert max(fragments_walked.values()) == 1


async def test_two_second_factor_attempts_through_doubling_fragments_are_refused(api, token):
    query = "mutation { ...F0 } " + doubling('verifyTwoFactor(code: "000000") { status }', on="Mutation")
    result = await guarded(api.gql(query, token=token))
    assert result.code == "BAD_REQUEST", result.body
    assert result.data is None


async def test_a_fragment_cycle_through_doubling_fragments_is_refused(api, token):
    query = "{ accounts { ...F0 } } " + doubling("...F0")
    result = await guarded(api.gql(query, token=token))
    assert "GRAPHQL_VALIDATION_FAILED" in result.codes, result.body
    assert any("within itself" in e["message"] for e in result.errors), result.body
    assert result.data is None


async def test_a_chain_of_fragments_as_long_as_the_token_limit_allows_is_refused_cleanly(api, token):
    query = "{ accounts { ...F0 } } " + " ".join(f"fragment F{n} on Account {{ ...F{n + 1} }}" for n in range(620))
    query += " fragment F620 on Account { id }"
    result = await guarded(api.gql(query, token=token))
    assert result.status == 200, result.body
    assert "GRAPHQL_VALIDATION_FAILED" in result.codes, result.body
    assert result.data is None


async def test_many_unknown_root_fields_spread_many_times_keep_only_the_counts_of_attempts(api, token, monkeypatch):
    # A thousand distinct names spread a thousand times: a million counts, were all of them kept.
    kept: list[Counter] = []

    def counting(*args, **kwargs):
        kept.append(counts := root_field_counts(*args, **kwargs))
        return counts

    root_field_counts = validation.root_field_counts
    monkeypatch.setattr(validation, "root_field_counts", counting)
    query = "mutation { ...B } fragment A on Mutation { " + " ".join(f"x{n}" for n in range(1000)) + " } "
    query += "fragment B on Mutation { " + "...A " * 1000 + "}"
    result = await guarded(api.gql(query, token=token))
    assert set(result.codes) == {"GRAPHQL_VALIDATION_FAILED"}, result.body  # 100 unknown fields, then aborted
    assert result.data is None
    assert kept and all(len(counts) == 0 for counts in kept)


async def test_many_fragments_selecting_one_field_are_refused_before_comparing_every_pair(api, token):
    # 350 fragments each selecting `children { id }`, spread together: graphql-core's default
    # budget of comparisons lets this through after seconds of work; ours refuses it.
    query = "{ accounts { " + " ".join(f"...A{n}" for n in range(350)) + " } } "
    query += " ".join(f"fragment A{n} on Account {{ children {{ id }} }}" for n in range(350))
    result = await guarded(api.gql(query, token=token))
    refused_at_validation(result, "Validation aborted.")


async def test_many_conflicting_fields_of_one_name_are_refused(api, token):
    query = "{ " + " a: me { id } a: accounts { id }" * 400 + " }"
    result = await guarded(api.gql(query, token=token))
    assert "GRAPHQL_VALIDATION_FAILED" in result.codes, result.body
    assert result.data is None
