"""Changing device while enforced (API.md, release 2): `replaceTotp` with a code of the current
device starts enrolment of a new one on the calling session; 2FA stays on with the old device
until `confirmTotp` with a code of the new one swaps them, issues ten new recovery codes and ends
every other session. The last used step is the user's across devices; a pending replacement ends
with its session and belongs to it alone; racing confirmations swap once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from mandate.models import audit, callers, throttle, totp
from mandate.models.tables import AuditEvent, RecoveryCode, Session, TotpDevice, User
from tests.support.api import CLIENT_ADDRESS, Api, Login, Result, app_client, error_code
from tests.support.audit import audit_events
from tests.support.codes import totp_now, wrong_code
from tests.support.documents import DISABLE, ENROL, LOGOUT, ME, REMAINING
from tests.support.holding import held_after
from tests.support.people import confirm, enrolled, password_only, signed_in
from tests.support.throttling import fail, retry_after, verifying, with_full_session
from tests.support.worlds import LONER, MEMBER, enforcing_manager

REPLACE = "mutation($c: String!) { replaceTotp(code: $c) { secret otpauthUri qrCodeSvg } }"
OTHER_ADDRESS = "198.51.100.9"
RACERS = 10
# What a confirmation that loses a race may answer (RATE_LIMITED: racers past the free attempts).
LOSING = {"INVALID_CODE", "FORBIDDEN", "UNAUTHENTICATED", "RATE_LIMITED"}


@pytest.fixture
async def bound(api, clinic, clock) -> tuple[Login, str]:
    """The Clinic under enforcement, its member made to enrol at login: their full session, secret
    and recovery codes; and the manager's session, to read the audit log."""
    manager = await enforcing_manager(api, clinic)
    return await enrolled(api, MEMBER, clock), manager


async def replace(api: Api, token: str, code: str) -> Result:
    return await api.gql(REPLACE, {"c": code}, token=token)


async def start_replacing(api: Api, token: str, code: str) -> str:
    """Starts a replacement in this session; the new device's secret."""
    r = await replace(api, token, code)
    assert r.errors == [], r.body
    enrolment = r.data["replaceTotp"]
    assert enrolment["otpauthUri"].startswith("otpauth://totp/") and "<svg" in enrolment["qrCodeSvg"]
    return enrolment["secret"]


async def second_step(api: Api, code: str) -> Result:
    """A fresh login of the member, and its second step with this code."""
    return await api.verify(await password_only(api, MEMBER), code)


async def full_session(api: Api, member: Login, clock) -> str:
    """Another full session of the member, past the second factor on a fresh step."""
    return await api.full_login(MEMBER, member.secret, clock)


async def device_works(api: Api, secret: str, clock) -> bool:
    """A login on a step no code has used yet passes with this device's code."""
    clock.advance(60)
    return (await second_step(api, totp_now(secret))).errors == []


# --- The change, end to end ---------------------------------------------------------------------


async def test_an_enforced_user_changes_device_and_keeps_only_the_current_session(api, bound, clock):
    member, _ = bound
    other = await full_session(api, member, clock)
    clock.advance(30)

    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    assert new_secret != member.secret
    r = await confirm(api, member.token, totp_now(new_secret, 1))
    assert r.errors == [], r.body
    done = r.data["confirmTotp"]
    assert done["token"] is None and done["user"] == {"email": MEMBER, "twoFactorEnabled": True}
    assert len(set(done["recoveryCodes"])) == 10

    assert (await api.gql(ME, token=member.token)).data["me"]["twoFactorEnabled"] is True  # kept
    assert error_code(await api.gql(ME, token=other), "UNAUTHENTICATED")
    assert await device_works(api, new_secret, clock)
    clock.advance(60)
    assert error_code(await second_step(api, totp_now(member.secret)), "INVALID_CODE")


async def test_the_old_device_works_until_the_swap_and_the_new_one_only_after(api, bound, clock):
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    assert await device_works(api, member.secret, clock)
    clock.advance(60)
    assert error_code(await second_step(api, totp_now(new_secret)), "INVALID_CODE")
    assert (await confirm(api, member.token, totp_now(new_secret))).errors == []
    assert not await device_works(api, member.secret, clock)
    assert await device_works(api, new_secret, clock)


async def test_the_swap_issues_new_recovery_codes_and_the_old_ones_stop_working(api, bound, clock):
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    fresh = (await confirm(api, member.token, totp_now(new_secret, 1))).data["confirmTotp"]["recoveryCodes"]
    assert not set(fresh) & set(member.recovery_codes)
    assert error_code(await second_step(api, member.recovery_codes[1]), "INVALID_CODE")
    r = await second_step(api, fresh[0])
    assert r.errors == [], r.body
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 9}}


async def test_a_recovery_code_starts_a_replacement_and_is_spent_by_it(api, bound, clock):
    """For a user whose phone is gone: the recovery code proves them, once."""
    member, _ = bound
    new_secret = await start_replacing(api, member.token, member.recovery_codes[0])
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 9}}
    assert error_code(await replace(api, member.token, member.recovery_codes[0]), "INVALID_CODE")
    assert (await confirm(api, member.token, totp_now(new_secret, 1))).errors == []


# --- The last used step is the user's -------------------------------------------------------------


async def test_no_step_at_or_before_the_last_accepted_on_either_device_works_after_the_swap(api, bound, clock):
    """The old device's code of the next step starts the replacement: the new device's codes of that
    step or before do not confirm it, a later one does. From then on that step is spent too,
    whichever device shows it."""
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret, 1))
    for spent in (0, 1):  # the current step, and the one the old device's code used
        assert error_code(await confirm(api, member.token, totp_now(new_secret, spent)), "INVALID_CODE")
    clock.advance(30)
    assert (await confirm(api, member.token, totp_now(new_secret, 1))).errors == []
    assert error_code(await second_step(api, totp_now(new_secret, 1)), "INVALID_CODE")  # the replay
    assert error_code(await second_step(api, totp_now(new_secret)), "INVALID_CODE")
    assert error_code(await second_step(api, totp_now(member.secret, 1)), "INVALID_CODE")  # the old device
    clock.advance(90)
    assert (await second_step(api, totp_now(new_secret))).errors == []


async def test_an_old_device_code_checked_before_the_swap_is_refused_after_it(api, bound, clock, monkeypatch):
    """A login's second step reads the device, then waits (here: held at its throttle claim) while
    the swap commits; the old device's code it carries, of a step still unused, is refused."""
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    clock.advance(30)  # the swap's code spends this step; the old device's carries the next
    token = await password_only(api, MEMBER)
    held, resume, claim = asyncio.Event(), asyncio.Event(), throttle.claim_attempt

    async def held_once(key, policy):
        if not held.is_set():
            held.set()
            await resume.wait()
        return await claim(key, policy)

    monkeypatch.setattr(throttle, "claim_attempt", held_once)
    verifying_old_code = asyncio.create_task(api.verify(token, totp_now(member.secret, 1)))
    await held.wait()
    assert (await confirm(api, member.token, totp_now(new_secret))).errors == []
    resume.set()
    assert error_code(await verifying_old_code, "INVALID_CODE")


async def test_the_code_that_started_the_replacement_is_spent(api, bound):
    member, _ = bound
    code = totp_now(member.secret)
    await start_replacing(api, member.token, code)
    assert error_code(await second_step(api, code), "INVALID_CODE")


# --- Failures leave nothing -------------------------------------------------------------------------


async def test_a_wrong_code_is_invalid_and_leaves_nothing_pending(api, bound):
    member, _ = bound
    assert error_code(await replace(api, member.token, wrong_code(member.secret)), "INVALID_CODE")
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()
    r = await confirm(api, member.token, totp_now(member.secret))
    assert error_code(r, "FORBIDDEN") and "replaceTotp" in r.errors[0]["message"], r.body


async def test_a_malformed_code_is_bad_input_and_not_counted(api, bound):
    member, _ = bound
    for code in ("12345", "１２３４５６", "123 456", "1234567", f" {totp_now(member.secret)}"):
        assert error_code(await replace(api, member.token, code), "BAD_USER_INPUT")
    assert (await replace(api, member.token, totp_now(member.secret))).errors == []


async def test_a_replacement_that_breaks_spends_neither_the_recovery_code_nor_the_attempt(
    api, bound, monkeypatch
):
    member, _ = bound
    original, broke = audit.record, []

    async def breaking(action, **kwargs):
        if action == audit.TOTP_REPLACEMENT_STARTED and not broke:
            broke.append(action)
            raise RuntimeError("the success path broke after the code was checked")
        return await original(action, **kwargs)

    monkeypatch.setattr(audit, "record", breaking)
    r = await replace(api, member.token, member.recovery_codes[0])
    assert broke and error_code(r, "INTERNAL_SERVER_ERROR"), r.body
    assert await throttle.failures(totp.second_factor_key((await User.get(email=MEMBER)).id)) == 0
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 10}}
    assert (await replace(api, member.token, member.recovery_codes[0])).errors == []


async def test_without_two_factor_replace_is_forbidden_and_points_to_enrol(api, clinic):
    token = await signed_in(api, LONER)
    r = await replace(api, token, "123456")
    assert error_code(r, "FORBIDDEN") and "enrolTotp" in r.errors[0]["message"], r.body


# --- Throttled, one per document, audited --------------------------------------------------------------


async def test_replace_is_a_throttled_second_factor_attempt(api, bound):
    member, _ = bound
    attempt = with_full_session(api, REPLACE, member.token)
    assert await fail(attempt, member.secret, 4) == ["INVALID_CODE"] * 4
    retry_after(await attempt(totp_now(member.secret)))  # even the right code, while the delay runs
    retry_after(await attempt(member.recovery_codes[0]))
    assert (await api.gql(REMAINING, token=member.token)).data == {"me": {"recoveryCodesRemaining": 10}}
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()


async def test_failures_of_replace_count_with_those_of_the_login(api, bound):
    member, _ = bound
    await fail(with_full_session(api, REPLACE, member.token), member.secret, 2)
    verify = verifying(api, await password_only(api, MEMBER))
    assert await fail(verify, member.secret, 2) == ["INVALID_CODE"] * 2
    retry_after(await verify(totp_now(member.secret)))


async def test_one_document_carries_one_replace(api, bound):
    member, _ = bound
    document = ('mutation($c: String!) { a: replaceTotp(code: $c) { secret } '
                'b: verifyTwoFactor(code: $c) { token } }')
    r = await api.gql(document, {"c": totp_now(member.secret)}, token=member.token)
    assert r.code == "BAD_REQUEST" and r.data is None, r.body
    twice = 'mutation($c: String!) { a: replaceTotp(code: $c) { secret } b: replaceTotp(code: $c) { secret } }'
    assert (await api.gql(twice, {"c": totp_now(member.secret)}, token=member.token)).code == "BAD_REQUEST"
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()


async def test_the_swap_is_audited_with_the_client_address(api, app, bound, clinic):
    member, manager = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    async with app_client(app, OTHER_ADDRESS, 40001) as elsewhere:
        assert (await confirm(Api(elsewhere), member.token, totp_now(new_secret, 1))).errors == []
    events = [(e["action"], e["clientAddress"], e["actor"]["email"]) for e in await audit_events(api, manager, clinic)
              if (e["subject"] or {}).get("email") == MEMBER and e["action"].startswith("TOTP_REPLACE")]
    assert events == [("TOTP_REPLACED", OTHER_ADDRESS, MEMBER), ("TOTP_REPLACEMENT_STARTED", CLIENT_ADDRESS, MEMBER)]


# --- The replacement belongs to its session and ends with it ---------------------------------------------


async def ended_by_logout(api: Api, member: Login, clock) -> None:
    assert (await api.gql(LOGOUT, token=member.token)).data == {"logout": True}


async def ended_by_expiry(api: Api, member: Login, clock) -> None:
    clock.advance(13 * 3600)  # full sessions live 12 hours


async def ended_by_another_sessions_swap(api: Api, member: Login, clock) -> None:
    """Another session of the member replaces the device too, and confirms first."""
    other = await full_session(api, member, clock)
    clock.advance(30)
    new_secret = await start_replacing(api, other, totp_now(member.secret))
    assert (await confirm(api, other, totp_now(new_secret, 1))).errors == []


@pytest.mark.parametrize("end", [ended_by_logout, ended_by_expiry, ended_by_another_sessions_swap],
                         ids=["logout", "expiry", "another session's swap"])
async def test_a_pending_replacement_ends_with_its_session(api, bound, clock, end):
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    await end(api, member, clock)
    assert error_code(await confirm(api, member.token, totp_now(new_secret)), "UNAUTHENTICATED")
    assert not await device_works(api, new_secret, clock)


async def test_another_sessions_confirmation_cannot_confirm_it(api, bound, clock):
    member, _ = bound
    other = await full_session(api, member, clock)
    clock.advance(30)
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    assert error_code(await confirm(api, other, totp_now(new_secret)), "FORBIDDEN")
    assert error_code(await api.gql(ENROL, token=other), "FORBIDDEN")  # 2FA is on: nothing replaced
    assert (await confirm(api, member.token, totp_now(new_secret, 1))).errors == []


async def test_while_pending_enrol_is_forbidden_and_disable_takes_the_old_device(api, clinic, clock):
    """An unbound user may still disable with the old device: 2FA, the replacement and every
    session go. (A bound one gets TWO_FACTOR_ENFORCED, as ever.)"""
    loner = await enrolled(api, LONER, clock)
    new_secret = await start_replacing(api, loner.token, totp_now(loner.secret))
    r = await api.gql(ENROL, token=loner.token)
    assert error_code(r, "FORBIDDEN") and "replaceTotp" in r.errors[0]["message"], r.body
    clock.advance(30)
    r = await api.gql(DISABLE, {"c": totp_now(loner.secret)}, token=loner.token)
    assert r.errors == [] and r.data["disableTotp"]["twoFactorEnabled"] is False, r.body
    assert error_code(await confirm(api, loner.token, totp_now(new_secret)), "UNAUTHENTICATED")
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()


async def test_a_bound_user_cannot_disable_while_replacing(api, bound, clock):
    member, _ = bound
    await start_replacing(api, member.token, totp_now(member.secret))
    clock.advance(30)
    r = await api.gql(DISABLE, {"c": totp_now(member.secret)}, token=member.token)
    assert error_code(r, "TWO_FACTOR_ENFORCED")


async def test_an_enrolment_begun_before_its_sessions_confirmation_committed_is_no_replacement(
    api, clinic, clock, monkeypatch
):
    """enrolTotp of a session whose 2FA was off when the request began, held until that same
    session's confirmation commits, leaves no secret pending beside the device: else confirmTotp
    would swap the device without a code of the current one."""
    token = await signed_in(api, LONER)
    secret = (await api.gql(ENROL, token=token)).data["enrolTotp"]["secret"]
    held, resume = held_after(monkeypatch, callers, "resolve")
    enrolling = asyncio.create_task(api.gql(ENROL, token=token))
    await held.wait()
    assert (await confirm(api, token, totp_now(secret))).errors == []
    resume.set()
    late = await enrolling
    assert error_code(late, "FORBIDDEN"), late.body
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()


# --- Racing confirmations ----------------------------------------------------------------------------------


def outcomes(results: list[Result]) -> Counter:
    assert all(r.status == 200 for r in results), [r.body for r in results if r.status != 200]
    return Counter("ok" if not r.errors else r.code for r in results)


async def assert_swapped_once(api: Api, results: list[Result], clock) -> Result:
    counts = outcomes(results)
    assert counts["ok"] == 1 and set(counts) - {"ok"} <= LOSING, counts
    assert await AuditEvent.filter(action=audit.TOTP_REPLACED).count() == 1
    assert await TotpDevice.all().count() == 2  # the manager's and the member's one device
    [winner] = [r for r in results if not r.errors]
    clock.advance(60)  # past any delay the losers' failures started
    codes = winner.data["confirmTotp"]["recoveryCodes"]
    assert await RecoveryCode.filter(user__email=MEMBER).count() == 10
    assert (await second_step(api, codes[0])).errors == []
    return winner


async def test_racing_confirmations_of_one_replacement_swap_once(api, bound, clock):
    member, _ = bound
    new_secret = await start_replacing(api, member.token, totp_now(member.secret))
    clock.advance(30)  # every racer's code is of a step after the one that started it
    codes = [totp_now(new_secret, n % 2) for n in range(RACERS)]
    results = list(await asyncio.gather(*(confirm(api, member.token, code) for code in codes)))
    await assert_swapped_once(api, results, clock)
    assert await device_works(api, new_secret, clock)


async def test_replacements_of_two_sessions_racing_swap_once_and_the_winners_device_is_in_use(api, bound, clock):
    member, _ = bound
    other = await full_session(api, member, clock)
    clock.advance(30)
    secrets_of = {member.token: await start_replacing(api, member.token, totp_now(member.secret)),
                  other: await start_replacing(api, other, totp_now(member.secret, 1))}
    clock.advance(30)  # a confirming code must be of a step after the ones that started them
    racers = [(token, totp_now(secrets_of[token], 1)) for _ in range(RACERS // 2) for token in secrets_of]
    results = list(await asyncio.gather(*(confirm(api, token, code) for token, code in racers)))
    await assert_swapped_once(api, results, clock)
    [winner_token] = {token for (token, _), r in zip(racers, results) if not r.errors}
    loser_token = other if winner_token == member.token else member.token
    assert await device_works(api, secrets_of[winner_token], clock)
    assert not await device_works(api, secrets_of[loser_token], clock)
