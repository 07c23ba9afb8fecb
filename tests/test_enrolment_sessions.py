"""Enrolment belongs to its session (API.md), confirmation is one atomic transition (rule 7), and
every second-factor attempt is all or nothing (issue 12, items 4 and 2).

- A second session's enrolTotp starts its own enrolment and never replaces the first's, so
  whoever has the password cannot take over an enrolment; confirmTotp confirms only the calling
  session's; confirming ends every other session, the other enrolling ones included.
- However many confirmations race (one session or several, codes of any accepted step), 2FA is
  switched on once; the others fail with an error and change nothing but the failure count.
- An attempt whose success path fails after the code was checked answers a masked
  INTERNAL_SERVER_ERROR and spends nothing: the same step, the same recovery code and the same
  free attempts are there for the next try.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from mandate.models import audit, sessions, throttle, totp
from mandate.models.tables import AuditEvent, RecoveryCode, Session, Throttle, TotpDevice, User
from tests.support.api import CLIENT_ADDRESS, Api, Result, app_client, error_code
from tests.support.codes import totp_now, wrong_code
from tests.support.documents import AUDIT, DISABLE, ME, REGENERATE, REMAINING
from tests.support.people import confirm, signed_in, start_enrolment
from tests.support.worlds import LONER, MANAGER, MEMBER, enforcing_manager

CONFIRMATION_RACERS = 10
# The errors a confirmation that loses a race may answer: API.md's three, and RATE_LIMITED for
# racers past the four free attempts (the throttle counts each attempt before checking it).
LOSING = {"INVALID_CODE", "FORBIDDEN", "UNAUTHENTICATED", "RATE_LIMITED"}
OTHER_ADDRESS = "198.51.100.9"


def outcomes(results: list[Result]) -> Counter:
    """"ok" for a confirmation that succeeded, else its error's code."""
    assert all(r.status == 200 for r in results), [r.body for r in results if r.status != 200]
    return Counter("ok" if not r.errors else r.code for r in results)


def steps_of_the_window(count: int) -> list[int]:
    """Each racer's step, -1, 0, +1 in turn: every code is accepted, and each step is newer than
    the one before it, so only the switch itself can stop a second confirmation."""
    return [(-1, 0, 1)[n % 3] for n in range(count)]


async def two_factor_enabled(email: str) -> bool:
    return await TotpDevice.exists(user__email=email)


async def enrolment_tokens(api: Api, clinic: str, count: int) -> list[str]:
    """`count` enrolment-only sessions of the Clinic's member, under enforcement."""
    await enforcing_manager(api, clinic)
    tokens = []
    for _ in range(count):
        status, token = await api.login_token(MEMBER)
        assert status == "ENROLMENT_REQUIRED", status
        tokens.append(token)
    return tokens


# --- Whose enrolment ------------------------------------------------------------------------


async def test_another_sessions_enrolment_never_replaces_this_ones(api, clinic):
    """The victim enrols; someone with the password logs in and enrols their own device."""
    victim, intruder = await enrolment_tokens(api, clinic, 2)
    victim_secret = await start_enrolment(api, victim)
    intruder_secret = await start_enrolment(api, intruder)
    assert intruder_secret != victim_secret
    r = await confirm(api, victim, totp_now(victim_secret))
    assert r.errors == [] and r.data["confirmTotp"]["user"]["twoFactorEnabled"] is True, r.body


async def test_another_sessions_code_does_not_confirm_this_sessions_enrolment(api, clinic):
    victim, intruder = await enrolment_tokens(api, clinic, 2)
    victim_secret = await start_enrolment(api, victim)
    intruder_secret = await start_enrolment(api, intruder)
    assert error_code(await confirm(api, victim, totp_now(intruder_secret)), "INVALID_CODE")
    assert error_code(await confirm(api, intruder, totp_now(victim_secret, 1)), "INVALID_CODE")
    assert not await two_factor_enabled(MEMBER)
    assert (await confirm(api, victim, totp_now(victim_secret))).errors == []


async def test_a_session_that_never_enrolled_cannot_confirm(api, clinic):
    enrolling, other = await enrolment_tokens(api, clinic, 2)
    secret = await start_enrolment(api, enrolling)
    assert error_code(await confirm(api, other, totp_now(secret)), "FORBIDDEN")
    assert not await two_factor_enabled(MEMBER)
    assert (await confirm(api, enrolling, totp_now(secret))).errors == []


async def test_confirming_ends_every_other_session_the_other_enrolling_one_included(api, clinic):
    confirming, enrolling = await enrolment_tokens(api, clinic, 2)
    _, plain = await api.login_token(MEMBER)
    secret = await start_enrolment(api, confirming)
    other_secret = await start_enrolment(api, enrolling)
    r = await confirm(api, confirming, totp_now(secret))
    assert r.errors == [], r.body
    new_token = r.data["confirmTotp"]["token"]
    for token in (confirming, enrolling, plain):
        assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")
    assert error_code(await confirm(api, enrolling, totp_now(other_secret, 1)), "UNAUTHENTICATED")
    assert (await api.gql(ME, token=new_token)).data["me"]["twoFactorEnabled"] is True
    # No session keeps a pending secret once 2FA is on.
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()


async def test_enrolment_and_confirmation_are_audited_with_the_client_address(api, app, clinic):
    """Started from one address, confirmed from another: a manager sees both."""
    token = await signed_in(api, MEMBER)
    secret = await start_enrolment(api, token)
    async with app_client(app, OTHER_ADDRESS, 40001) as elsewhere:
        assert (await confirm(Api(elsewhere), token, totp_now(secret))).errors == []
    r = await api.gql(AUDIT, {"id": clinic}, token=await signed_in(api, MANAGER))
    events = [edge["node"] for edge in r.data["account"]["auditEvents"]["edges"]]
    enrolment = [(e["action"], e["clientAddress"]) for e in events if e["action"].startswith("TOTP_")]
    assert enrolment == [("TOTP_CONFIRMED", OTHER_ADDRESS), ("TOTP_ENROLMENT_STARTED", CLIENT_ADDRESS)]


# --- Racing confirmations -------------------------------------------------------------------


async def race_confirmations(api: Api, racers: list[tuple[str, str]]) -> list[Result]:
    """Every (token, code) confirms at once."""
    return list(await asyncio.gather(*(confirm(api, token, code) for token, code in racers)))


async def assert_one_working_set_of_recovery_codes(api: Api, clock, winner: Result, email: str) -> None:
    """Only the winner's codes are stored, and they work (once the losers' failures, which count
    like any others, have no delay left to run)."""
    clock.advance(60)
    codes = winner.data["confirmTotp"]["recoveryCodes"]
    assert await RecoveryCode.filter(user__email=email).count() == 10
    status, token = await api.login_token(email)
    assert status == "TWO_FACTOR_REQUIRED"
    r = await api.verify(token, codes[0])
    assert r.errors == [], r.body
    assert (await api.gql(REMAINING, token=r.data["verifyTwoFactor"]["token"])).data == {
        "me": {"recoveryCodesRemaining": 9}
    }


async def test_ten_racing_confirmations_of_one_session_switch_two_factor_on_once(api, clinic, clock):
    token = await signed_in(api, LONER)
    secret = await start_enrolment(api, token)
    racers = [(token, totp_now(secret, step)) for step in steps_of_the_window(CONFIRMATION_RACERS)]
    results = await race_confirmations(api, racers)
    counts = outcomes(results)
    assert counts["ok"] == 1 and set(counts) - {"ok"} <= LOSING, counts
    [winner] = [r for r in results if not r.errors]
    assert await AuditEvent.filter(action=audit.TOTP_CONFIRMED).count() == 1
    await assert_one_working_set_of_recovery_codes(api, clock, winner, LONER)


async def test_confirmations_racing_from_two_enrolling_sessions_switch_two_factor_on_once(api, clinic, clock):
    """Each session with its own secret: exactly one of them wins, and its device is the one in use."""
    first, second = await enrolment_tokens(api, clinic, 2)
    secrets_of = {first: await start_enrolment(api, first), second: await start_enrolment(api, second)}
    racers = [
        (token, totp_now(secrets_of[token], step))
        for step in steps_of_the_window(CONFIRMATION_RACERS // 2)
        for token in (first, second)
    ]
    results = await race_confirmations(api, racers)
    counts = outcomes(results)
    assert counts["ok"] == 1 and set(counts) - {"ok"} <= LOSING, counts
    [(winner_token, _)] = [racer for racer, r in zip(racers, results) if not r.errors]
    [winner] = [r for r in results if not r.errors]
    await assert_one_working_set_of_recovery_codes(api, clock, winner, MEMBER)
    clock.advance(30)  # a step no code of the race used
    for token, works in ((winner_token, True), (first if winner_token == second else second, False)):
        _, password_only = await api.login_token(MEMBER)
        r = await api.verify(password_only, totp_now(secrets_of[token]))
        assert (r.errors == []) is works, r.body


# --- All or nothing -------------------------------------------------------------------------


class InjectedFailure(RuntimeError):
    """Raised once, on the success path, after the code was checked."""


@pytest.fixture
def fail_once(monkeypatch):
    """fail_once(module, name, when): the next call of module.name for which when(*args, **kwargs)
    holds raises InjectedFailure; returns a list that records that it did."""

    def arm(module, name: str, when=lambda *args, **kwargs: True) -> list[str]:
        original, failed = getattr(module, name), []

        async def failing(*args, **kwargs):
            if not failed and when(*args, **kwargs):
                failed.append(name)
                raise InjectedFailure("the success path broke after the code was checked")
            return await original(*args, **kwargs)

        monkeypatch.setattr(module, name, failing)
        return failed

    return arm


def recording(action: str):
    return lambda recorded, **kwargs: recorded == action


async def footprint() -> tuple:
    """All that an attempt can leave: audit rows, failure counts, sessions, 2FA state and steps,
    recovery codes."""
    return (
        await AuditEvent.all().count(),
        sorted((key, n) for key, n in await Throttle.all().values_list("key", "failures") if n),
        sorted(await Session.all().values_list("id", "kind", "two_factor_passed", "revoked_at", "totp_pending_secret")),
        sorted(await TotpDevice.all().values_list("user_id", "last_step", "secret")),
        sorted(await RecoveryCode.all().values_list("code_hash", "used_at")),
    )


async def assert_masked_error_that_wrote_nothing(attempt, failed: list[str]) -> None:
    before = await footprint()
    result = await attempt()
    assert failed, "the injected failure was never reached"
    assert result.status == 200 and result.code == "INTERNAL_SERVER_ERROR", result.body
    assert result.errors[0]["message"] == "Internal server error." and "broke" not in str(result.body)
    assert await footprint() == before


async def assert_four_free_failures_left(attempt, secret: str, clock) -> None:
    """The failure count is where it was: four wrong codes in a row are still INVALID_CODE. Then
    the clock moves past any delay the fourth one started (a second or so: the code of the step
    before stays within the window)."""
    answers = [await attempt(wrong_code(secret)) for _ in range(4)]
    assert [r.code for r in answers] == ["INVALID_CODE"] * 4, [r.body for r in answers]
    clock.advance(answers[-1].errors[0]["extensions"].get("retryAfter", 0))


async def test_a_verification_that_breaks_after_the_check_spends_neither_the_step_nor_the_attempt(
    api, member, fail_once, clock
):
    _, password_only = await api.login_token(MEMBER)
    code = totp_now(member.secret)
    failed = fail_once(sessions, "issue")
    await assert_masked_error_that_wrote_nothing(lambda: api.verify(password_only, code), failed)
    await assert_four_free_failures_left(lambda c: api.verify(password_only, c), member.secret, clock)
    r = await api.verify(password_only, code)
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body


async def test_a_recovery_code_is_not_spent_by_a_verification_that_breaks(api, member, fail_once, clock):
    _, password_only = await api.login_token(MEMBER)
    code = member.recovery_codes[0]
    failed = fail_once(audit, "record", recording(audit.RECOVERY_CODE_USED))
    await assert_masked_error_that_wrote_nothing(lambda: api.verify(password_only, code), failed)
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 10}}
    await assert_four_free_failures_left(lambda c: api.verify(password_only, c), member.secret, clock)
    r = await api.verify(password_only, code)
    assert r.errors == [], r.body
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 9}}


async def test_a_confirmation_that_breaks_leaves_two_factor_off_and_its_code_unspent(api, clinic, fail_once, clock):
    other = await signed_in(api, LONER)
    token = await signed_in(api, LONER)
    secret = await start_enrolment(api, token)
    code = totp_now(secret)
    failed = fail_once(audit, "record", recording(audit.TOTP_CONFIRMED))
    await assert_masked_error_that_wrote_nothing(lambda: confirm(api, token, code), failed)
    assert (await api.gql(ME, token=other)).data["me"]["twoFactorEnabled"] is False  # still a live session
    await assert_four_free_failures_left(lambda c: confirm(api, token, c), secret, clock)
    r = await confirm(api, token, code)
    assert r.errors == [] and len(r.data["confirmTotp"]["recoveryCodes"]) == 10, r.body


async def test_a_regeneration_that_breaks_keeps_the_old_recovery_codes_and_its_code_unspent(
    api, member, fail_once, clock
):
    code = totp_now(member.secret)
    failed = fail_once(audit, "record", recording(audit.RECOVERY_CODES_REGENERATED))
    attempt = lambda c: api.gql(REGENERATE, {"c": c}, token=member.token)  # noqa: E731
    await assert_masked_error_that_wrote_nothing(lambda: attempt(code), failed)
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 10}}
    await assert_four_free_failures_left(attempt, member.secret, clock)
    r = await attempt(code)
    assert r.errors == [] and not set(r.data["regenerateRecoveryCodes"]) & set(member.recovery_codes), r.body


async def test_a_disable_that_breaks_keeps_two_factor_and_every_session(api, member, fail_once, clock):
    code = totp_now(member.secret)
    failed = fail_once(audit, "record", recording(audit.TOTP_DISABLED))
    attempt = lambda c: api.gql(DISABLE, {"c": c}, token=member.token)  # noqa: E731
    await assert_masked_error_that_wrote_nothing(lambda: attempt(code), failed)
    assert (await api.gql(ME, token=member.token)).data["me"]["twoFactorEnabled"] is True
    await assert_four_free_failures_left(attempt, member.secret, clock)
    r = await attempt(code)
    assert r.errors == [] and r.data["disableTotp"]["twoFactorEnabled"] is False, r.body


async def test_a_wrong_code_is_counted_and_audited(api, member):
    _, password_only = await api.login_token(MEMBER)
    before = await AuditEvent.filter(action=audit.SECOND_FACTOR_FAILED).count()
    assert error_code(await api.verify(password_only, wrong_code(member.secret)), "INVALID_CODE")
    assert await AuditEvent.filter(action=audit.SECOND_FACTOR_FAILED).count() == before + 1
    user = await User.get(email=MEMBER)
    assert await throttle.failures(totp.second_factor_key(user.id)) == 1
