"""Throttling of failed second factors and passwords (API.md "Second factors"): 4 free failures,
then RATE_LIMITED with a growing delay that refuses even the right answer, per user across
sessions and mutations; TOTP locked after 100 failures until a recovery code is used."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import Api
from tests.support.audit import audit_actions
from tests.support.codes import MALFORMED, totp_now, wrong_code
from tests.support.documents import DISABLE, REGENERATE
from tests.support.people import (
    confirm,
    enrolled,
    password_only,
    signed_in,
    start_enrolment,
    verify_after_login,
)
from tests.support.throttling import (
    Attempt,
    fail,
    fail_password,
    retry_after,
    verifying,
    waited,
    with_full_session,
)
from tests.support.worlds import LONER, MANAGER, MEMBER

# --- Second factors -------------------------------------------------------------------------


async def test_the_first_four_failures_are_invalid_code(api, member):
    assert await fail(verifying(api, await password_only(api, MEMBER)), member.secret, 4) == ["INVALID_CODE"] * 4


async def test_the_fifth_failure_and_later_ones_are_rate_limited_with_retry_after(api, member):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 4)
    retry_after(await attempt(wrong_code(member.secret)))
    retry_after(await attempt(wrong_code(member.secret)))


async def test_the_right_code_is_refused_while_the_delay_runs(api, member):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 5)
    retry_after(await attempt(totp_now(member.secret)))


async def test_the_right_code_works_after_the_delay_and_resets_the_count(api, member, clock):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 4)
    clock.advance(retry_after(await attempt(wrong_code(member.secret))))
    r = await attempt(totp_now(member.secret))
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body
    attempt = verifying(api, await password_only(api, MEMBER))
    assert await fail(attempt, member.secret, 4) == ["INVALID_CODE"] * 4


async def test_the_delay_grows_with_every_further_failure(api, member, clock):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 4)
    delays = []
    for _ in range(4):
        clock.advance(retry_after(await attempt(wrong_code(member.secret))))  # refused unchecked
        checked = await attempt(wrong_code(member.secret))  # the delay has passed: checked, wrong
        delays.append(waited(checked, "INVALID_CODE"))
    assert delays == sorted(set(delays)), delays


async def test_a_checked_attempt_is_never_answered_as_an_unchecked_one(api, member, clinic, clock):
    """Thirty wrong codes at once: exactly the four free ones are checked, each answered
    INVALID_CODE and audited as a failure; the other 26 are refused unchecked (RATE_LIMITED,
    audited as throttled). So no guess is checked that the answer does not own up to."""
    attempt = verifying(api, await password_only(api, MEMBER))
    answers = await asyncio.gather(*(attempt(wrong_code(member.secret)) for _ in range(30)))
    codes = [r.code for r in answers]
    assert sorted(codes) == ["INVALID_CODE"] * 4 + ["RATE_LIMITED"] * 26, codes
    actions = await audit_actions(api, await signed_in(api, MANAGER), clinic, MEMBER)
    assert actions.count("SECOND_FACTOR_FAILED") == 4 and actions.count("SECOND_FACTOR_THROTTLED") == 26, actions


async def test_failures_count_per_user_across_sessions(api, member):
    first, second = verifying(api, await password_only(api, MEMBER)), verifying(api, await password_only(api, MEMBER))
    for attempt in (first, second, first, second):
        assert (await attempt(wrong_code(member.secret))).code == "INVALID_CODE"
    retry_after(await first(wrong_code(member.secret)))
    retry_after(await second(totp_now(member.secret)))


async def test_failures_of_one_user_do_not_throttle_another(api, member, clock):
    manager = await enrolled(api, MANAGER, clock)
    await fail(verifying(api, await password_only(api, MEMBER)), member.secret, 5)
    r = await api.verify(await password_only(api, MANAGER), totp_now(manager.secret))
    assert r.errors == [], r.body


async def attempt_by(api: Api, clock, mutation: str) -> tuple[Attempt, str]:
    """An attempt through one of the four second-factor mutations, and the secret it checks."""
    if mutation == "confirmTotp":
        token = await signed_in(api, LONER)
        secret = await start_enrolment(api, token)
        return (lambda code: confirm(api, token, code)), secret
    member = await enrolled(api, MEMBER, clock)
    if mutation == "verifyTwoFactor":
        return verifying(api, await password_only(api, MEMBER)), member.secret
    query = {"disableTotp": DISABLE, "regenerateRecoveryCodes": REGENERATE}[mutation]
    return with_full_session(api, query, member.token), member.secret


@pytest.mark.parametrize("mutation", ["verifyTwoFactor", "confirmTotp", "disableTotp", "regenerateRecoveryCodes"])
async def test_every_second_factor_mutation_is_throttled(api, clinic, clock, mutation):
    attempt, secret = await attempt_by(api, clock, mutation)
    assert await fail(attempt, secret, 4) == ["INVALID_CODE"] * 4
    retry_after(await attempt(wrong_code(secret)))
    retry_after(await attempt(totp_now(secret)))


async def test_failures_in_different_mutations_count_together(api, member):
    verify = verifying(api, await password_only(api, MEMBER))
    disable = with_full_session(api, DISABLE, member.token)
    regenerate = with_full_session(api, REGENERATE, member.token)
    for attempt in (verify, disable, regenerate, verify):
        assert (await attempt(wrong_code(member.secret))).code == "INVALID_CODE"
    retry_after(await disable(wrong_code(member.secret)))


async def test_after_100_failures_totp_stays_locked_until_a_recovery_code_is_used(api, member, clock):
    wait = 0
    for _ in range(100):  # each failure waits out the delay of the one before, so each is checked
        clock.advance(wait)
        r = await verify_after_login(api, wrong_code(member.secret), MEMBER)
        assert r.code == "INVALID_CODE", r.body
        wait = r.errors[0]["extensions"].get("retryAfter", 0)
    clock.advance(wait + 24 * 3600)
    retry_after(await verify_after_login(api, totp_now(member.secret), MEMBER))
    r = await verify_after_login(api, member.recovery_codes[0], MEMBER)
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body
    assert (await verify_after_login(api, totp_now(member.secret, 1), MEMBER)).errors == []


async def test_parallel_attempts_cannot_outrun_the_throttle(api, member, clock):
    """A burst of guesses sent at once is held to the same count: after 4 failures (a 1 s delay)
    none of the burst is checked, so the right code works 1.5 s later. Were the burst checked
    whole, 14 failures would impose minutes."""
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 4)
    answers = await asyncio.gather(*(attempt(wrong_code(member.secret)) for _ in range(10)))
    assert [r.code for r in answers] == ["RATE_LIMITED"] * 10
    retry_after(await attempt(totp_now(member.secret)))  # even the right code, while the delay runs
    clock.advance(1.5)
    assert (await attempt(totp_now(member.secret))).errors == []


async def test_malformed_codes_do_not_count_as_failures(api, member):
    attempt = verifying(api, await password_only(api, MEMBER))
    for reshape in MALFORMED.values():
        assert (await attempt(reshape(totp_now(member.secret)))).code == "BAD_USER_INPUT"
    assert await fail(attempt, member.secret, 4) == ["INVALID_CODE"] * 4


async def test_failed_and_throttled_second_factors_are_audited(api, member, clinic):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 5)
    await attempt(totp_now(member.secret))  # refused while the delay runs
    actions = await audit_actions(api, await signed_in(api, MANAGER), clinic, MEMBER)
    failed, throttled = actions.count("SECOND_FACTOR_FAILED"), actions.count("SECOND_FACTOR_THROTTLED")
    assert failed >= 4 and throttled >= 1 and failed + throttled == 6, actions


# --- Passwords ------------------------------------------------------------------------------


async def test_the_fifth_password_failure_is_rate_limited_and_refuses_even_the_right_password(api, clinic, clock):
    assert await fail_password(api, MEMBER, 4) == ["INVALID_CREDENTIALS"] * 4
    wait = retry_after(await api.login(MEMBER, "wrong-password"))
    retry_after(await api.login(MEMBER))
    clock.advance(wait)
    assert (await api.login_token(MEMBER))[0] == "AUTHENTICATED"


async def test_every_spelling_of_an_email_counts_towards_its_throttle(api, clinic):
    spellings = ["Member@Example.org", " member@example.org", "MEMBER@EXAMPLE.ORG", "member@example.org "]
    assert [(await api.login(email, "wrong-password")).code for email in spellings] == ["INVALID_CREDENTIALS"] * 4
    retry_after(await api.login(MEMBER.title(), "wrong-password"))
    retry_after(await api.login(MEMBER.upper()))


async def test_parallel_password_guesses_cannot_outrun_the_throttle(api, clinic, clock):
    """After 4 failures (a 1 s delay), a burst of 10 wrong passwords sent at once counts none,
    not ten: the right password works 1.5 s later."""
    await fail_password(api, MEMBER, 4)
    answers = await asyncio.gather(*(api.login(MEMBER, "wrong-password") for _ in range(10)))
    assert [r.code for r in answers] == ["RATE_LIMITED"] * 10
    retry_after(await api.login(MEMBER))
    clock.advance(1.5)
    assert (await api.login_token(MEMBER))[0] == "AUTHENTICATED"


async def test_a_right_password_resets_the_count(api, clinic, clock):
    await fail_password(api, MEMBER, 4)
    clock.advance(retry_after(await api.login(MEMBER)))  # the delay after the fourth runs out
    await signed_in(api, MEMBER)
    assert await fail_password(api, MEMBER, 4) == ["INVALID_CREDENTIALS"] * 4


async def test_an_unknown_email_is_throttled_like_a_known_one(api, clinic):
    assert await fail_password(api, "nobody@example.org", 4) == ["INVALID_CREDENTIALS"] * 4
    retry_after(await api.login("nobody@example.org", "wrong-password"))


async def test_a_throttled_email_does_not_block_another_from_the_same_address(api, clinic):
    await fail_password(api, MEMBER, 6)
    assert await fail_password(api, MANAGER, 1) == ["INVALID_CREDENTIALS"]
    await signed_in(api, MANAGER)


async def test_an_address_may_fail_a_hundred_passwords_within_an_hour(api, clinic, clock):
    answers = [await api.login(f"user{i}@example.org", "wrong-password") for i in range(100)]
    assert [r.code for r in answers] == ["INVALID_CREDENTIALS"] * 100  # each checked, at once
    clock.advance(waited(answers[-1], "INVALID_CREDENTIALS"))  # the hundredth starts a delay of seconds
    await signed_in(api, MEMBER)


async def test_an_address_past_a_hundred_failures_is_slowed_then_forgiven_after_an_hour(api, clinic, clock):
    codes = [(await api.login(f"user{i}@example.org", "wrong-password")).code for i in range(101)]
    assert codes == ["INVALID_CREDENTIALS"] * 100 + ["RATE_LIMITED"]
    retry_after(await api.login(MEMBER))  # a right password from that address waits too
    clock.advance(3600)
    assert (await api.login_token(MEMBER))[0] == "AUTHENTICATED"
