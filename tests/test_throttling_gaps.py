"""Throttling (issue 3, API.md "Second factors"): what test_second_factor_throttling.py leaves out.
A recovery code waits out the delay like any code; a manager's reset, like a recovery code, frees
a TOTP locked after 100 failures; and a failure stamped a moment
"later" than a request's own clock must not delay that request when the failure is a free one.
Across server processes: test_replay_two_processes.py."""

from __future__ import annotations

import pytest

from tests.support.api import Api
from tests.support.clock import Clock
from tests.support.codes import totp_now, wrong_code
from tests.support.people import enrolled, password_only, signed_in
from tests.support.throttling import fail, retry_after, verifying
from tests.support.worlds import MANAGER, MEMBER

RESET = "mutation($a: ID!, $u: ID!) { resetMemberTwoFactor(accountId: $a, userId: $u) { twoFactorEnabled } }"


async def test_a_recovery_code_waits_out_the_delay_too_and_stays_unused(api, member, clock):
    attempt = verifying(api, await password_only(api, MEMBER))
    await fail(attempt, member.secret, 4)
    wait = retry_after(await attempt(wrong_code(member.secret)))
    retry_after(await attempt(member.recovery_codes[0]))
    # Neither spent nor counted as a failure (which would have doubled the delay).
    clock.advance(wait)
    r = await attempt(member.recovery_codes[0])
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body


async def lock_totp(api: Api, secret: str, clock: Clock) -> None:
    """100 consecutive failures, each after the delay of the one before (so each is checked)."""
    wait = 0
    for _ in range(100):
        clock.advance(wait)
        r = await api.verify(await password_only(api, MEMBER), wrong_code(secret))
        assert r.code == "INVALID_CODE", r.body
        wait = r.errors[0]["extensions"].get("retryAfter", 0)
    clock.advance(wait + 3600)
    r = await api.verify(await password_only(api, MEMBER), totp_now(secret))
    assert r.errors[0]["extensions"].get("locked") is True, r.body


async def test_a_managers_reset_frees_a_totp_locked_after_100_failures(api, clinic, member, clock):
    manager = await enrolled(api, MANAGER, clock)
    member_id = (await api.gql("{ me { id } }", token=member.token)).data["me"]["id"]
    await lock_totp(api, member.secret, clock)

    manager_token = await api.full_login(MANAGER, manager.secret, clock)  # the first session has expired
    r = await api.gql(RESET, {"a": clinic, "u": member_id}, token=manager_token)
    assert r.errors == [] and r.data["resetMemberTwoFactor"] == {"twoFactorEnabled": False}, r.body

    # The member enrols a new device; its codes count from nothing.
    again = await api.enrol(await signed_in(api, MEMBER))
    clock.advance(30)
    assert await api.full_login(MEMBER, again.secret, clock)


@pytest.mark.parametrize("failed_email", ["nobody@example.org", MEMBER], ids=["per address", "per email"])
async def test_a_free_failure_stamped_a_moment_ahead_delays_nobody(api, clinic, clock, failed_email):
    clock.advance(0.05)  # another server, its clock 50 ms ahead, records one wrong password
    assert (await api.login(failed_email, "wrong-password")).code == "INVALID_CREDENTIALS"
    clock.advance(-0.05)
    # One failure is within the free ones (4 per email, 100 per address): nobody waits.
    r = await api.login(MEMBER)
    assert r.errors == [] and r.data["login"]["status"] == "AUTHENTICATED", r.body
