"""Password throttles by where the guesses come from (issue 12, items 6 and 6b; API.md "Second
factors"): per email from one address, 4 failures before a delay; per email from anywhere, NIST
SP 800-63B's ceiling of 100; per address, 100 an hour, looked at but never claimed, so that a
clinic's honest logins at the start of a shift never contend for it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mandate.models import crypto
from tests.support.api import Api, app_client
from tests.support.people import signed_in
from tests.support.throttling import fail_password, retry_after, waited
from tests.support.worlds import MEMBER


def from_address(app, address: str) -> httpx.AsyncClient:
    return app_client(app, address)


async def test_a_stranger_elsewhere_cannot_lock_a_user_out(app, api, clinic):
    async with from_address(app, "198.51.100.9") as stranger:
        assert await fail_password(Api(stranger), MEMBER, 6) == ["INVALID_CREDENTIALS"] * 4 + ["RATE_LIMITED"] * 2
    assert (await api.login_token(MEMBER))[0] == "AUTHENTICATED"  # from the member's own address


async def test_a_hundred_failures_from_anywhere_hold_the_email_even_from_a_new_address(app, api, clinic, clock):
    for i in range(25):  # 25 addresses, 4 free guesses each: 100 consecutive failures of one email
        async with from_address(app, f"198.51.100.{i + 1}") as guesser:
            assert await fail_password(Api(guesser), MEMBER, 4) == ["INVALID_CREDENTIALS"] * 4
    async with from_address(app, "192.0.2.77") as fresh:
        wait = retry_after(await Api(fresh).login(MEMBER))  # even the right password, from anywhere
        clock.advance(wait)
        assert (await Api(fresh).login_token(MEMBER))[0] == "AUTHENTICATED"
    # The success started the email's count again: four more from a new address are free.
    async with from_address(app, "192.0.2.78") as guesser:
        assert await fail_password(Api(guesser), MEMBER, 4) == ["INVALID_CREDENTIALS"] * 4


async def test_the_hundredth_failure_of_an_email_is_answered_as_checked(app, clinic):
    answers = []
    for i in range(25):
        async with from_address(app, f"198.51.100.{i + 1}") as guesser:
            answers += [await Api(guesser).login(MEMBER, "wrong-password") for _ in range(4)]
    assert [r.code for r in answers] == ["INVALID_CREDENTIALS"] * 100
    assert waited(answers[-1], "INVALID_CREDENTIALS") >= 1  # and it starts the email's delay


@pytest.mark.parametrize("burst", [150])
async def test_a_burst_of_correct_logins_from_one_address_all_succeed(api, seed, burst):
    """A clinic behind one NAT at the start of a shift: every correct password gets in."""
    await seed({"users": [{"email": f"nurse{i}@example.org"} for i in range(burst)]})
    answers = await asyncio.gather(*(api.login(f"nurse{i}@example.org") for i in range(burst)))
    statuses = [r.data["login"]["status"] if not r.errors else r.code for r in answers]
    assert statuses == ["AUTHENTICATED"] * burst, sorted(set(statuses))


async def test_a_burst_of_correct_logins_gets_in_beside_failures_from_the_same_address(api, seed):
    await seed({"users": [{"email": f"nurse{i}@example.org"} for i in range(60)]})
    logins = [api.login(f"nurse{i}@example.org") for i in range(60)]
    guesses = [api.login(f"nurse{i}@example.org", "wrong-password") for i in range(20)]
    answers = await asyncio.gather(*logins, *guesses)
    assert all(not r.errors for r in answers[:60]), [r.body for r in answers[:60] if r.errors][:3]
    assert {r.code for r in answers[60:]} == {"INVALID_CREDENTIALS"}


async def test_a_login_that_ends_in_an_error_spends_no_attempt(api, clinic, monkeypatch):
    calls = 0

    def broken(stored_hash, password):
        nonlocal calls
        calls += 1
        raise RuntimeError("the password hasher failed")

    monkeypatch.setattr("mandate.models.sessions.verify_password", broken)
    for _ in range(6):
        assert (await api.login(MEMBER, "wrong-password")).code == "INTERNAL_SERVER_ERROR"
    assert calls == 6
    monkeypatch.setattr("mandate.models.sessions.verify_password", crypto.verify_password)
    assert await fail_password(api, MEMBER, 4) == ["INVALID_CREDENTIALS"] * 4  # all four still free
    retry_after(await api.login(MEMBER))  # the delay the fourth starts, and no more


async def test_a_user_is_not_refused_for_another_users_failures_from_the_same_address(api, clinic):
    await fail_password(api, "someone.else@example.org", 8)
    await signed_in(api, MEMBER)
