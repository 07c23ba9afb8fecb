"""TOTP: enrolling and confirming, which codes are accepted (API.md "Second factors"), the second
step of a login, disabling (rules 3, 4 and 7), and the audit of it all (rule 6)."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.support.api import CLIENT_ADDRESS, Api, Login, Result, error_code
from tests.support.codes import MALFORMED, totp_now, wrong_code
from tests.support.documents import ACCOUNTS, AUDIT, DISABLE, ENROL, ME, SET_ENFORCEMENT
from tests.support.enforcement import enforce
from tests.support.people import confirm, enrolled, signed_in, start_enrolment, verify_after_login
from tests.support.worlds import LONER, MANAGER, MEMBER, enforcing_manager


async def two_factor_enabled(api: Api, email: str) -> bool:
    """Whether the user's next login asks for a second factor."""
    status, _ = await api.login_token(email)
    return status == "TWO_FACTOR_REQUIRED"


# --- Enrolling ------------------------------------------------------------------------------


async def test_enrolment_gives_a_base32_secret_of_at_least_160_bits(api, clinic):
    secret = await start_enrolment(api, await signed_in(api, LONER))
    assert re.fullmatch(r"[A-Z2-7]{32,}=*", secret), secret
    assert len(base64.b32decode(secret)) * 8 >= 160


async def test_enrolment_gives_an_otpauth_uri_for_mandate_and_the_user(api, clinic):
    r = await api.gql(ENROL, token=await signed_in(api, LONER))
    enrolment = r.data["enrolTotp"]
    uri = urlsplit(enrolment["otpauthUri"])
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", f"/Mandate:{LONER}")
    assert query["secret"] == [enrolment["secret"]] and query["issuer"] == ["Mandate"]


async def test_enrolment_gives_an_svg_qr_code(api, clinic):
    r = await api.gql(ENROL, token=await signed_in(api, LONER))
    assert "<svg" in r.data["enrolTotp"]["qrCodeSvg"]


async def test_confirming_with_a_wrong_code_is_invalid_code_and_leaves_two_factor_off(api, clinic):
    token = await signed_in(api, LONER)
    secret = await start_enrolment(api, token)
    assert error_code(await confirm(api, token, wrong_code(secret)), "INVALID_CODE")
    assert (await api.gql(ME, token=token)).data["me"]["twoFactorEnabled"] is False
    assert not await two_factor_enabled(api, LONER)


async def test_confirming_turns_two_factor_on_with_ten_recovery_codes(api, clinic):
    token = await signed_in(api, LONER)
    r = await confirm(api, token, totp_now(await start_enrolment(api, token)))
    assert r.errors == [], r.body
    payload = r.data["confirmTotp"]
    assert payload["user"] == {"email": LONER, "twoFactorEnabled": True}
    assert len(set(payload["recoveryCodes"])) == 10
    assert await two_factor_enabled(api, LONER)


async def test_confirming_with_an_enrolment_only_token_gives_a_new_full_token(api, clinic):
    await enforcing_manager(api, clinic)
    _, enrolment_token = await api.login_token(MEMBER)
    r = await confirm(api, enrolment_token, totp_now(await start_enrolment(api, enrolment_token)))
    new_token = r.data["confirmTotp"]["token"]
    assert new_token and new_token != enrolment_token
    assert (await api.gql(ACCOUNTS, token=new_token)).errors == []
    assert error_code(await api.gql(ME, token=enrolment_token), "UNAUTHENTICATED")


async def test_confirming_with_a_full_session_keeps_it_as_one_that_passed_two_factor(api, clinic):
    token = await signed_in(api, MANAGER)
    r = await confirm(api, token, totp_now(await start_enrolment(api, token)))
    assert r.errors == [] and r.data["confirmTotp"]["token"] in (None, token), r.body
    switched = await api.gql(SET_ENFORCEMENT, {"a": clinic, "on": True}, token=token)
    assert switched.errors == [], switched.body


async def test_confirming_ends_every_other_session_of_the_user(api, clinic):
    other = await signed_in(api, LONER)
    token = await signed_in(api, LONER)
    assert (await confirm(api, token, totp_now(await start_enrolment(api, token)))).errors == []
    assert error_code(await api.gql(ME, token=other), "UNAUTHENTICATED")
    assert (await api.gql(ME, token=token)).data["me"]["email"] == LONER


async def test_enrolling_while_two_factor_is_on_is_forbidden(api, clinic, clock):
    login = await enrolled(api, LONER, clock)
    assert error_code(await api.gql(ENROL, token=login.token), "FORBIDDEN")
    # The device in use still works.
    assert await api.full_login(LONER, login.secret, clock)


async def test_restarting_enrolment_replaces_the_secret(api, clinic):
    token = await signed_in(api, LONER)
    first = await start_enrolment(api, token)
    second = await start_enrolment(api, token)
    assert second != first
    assert error_code(await confirm(api, token, totp_now(first)), "INVALID_CODE")
    assert (await confirm(api, token, totp_now(second))).errors == []


# --- Which codes are accepted ---------------------------------------------------------------


@pytest.fixture
async def loner(api, clinic, clock) -> Login:
    return await enrolled(api, LONER, clock)


@pytest.mark.parametrize("steps", [-1, 0, 1])
async def test_codes_of_the_current_step_and_one_either_side_are_accepted(api, loner, steps):
    r = await verify_after_login(api, totp_now(loner.secret, steps), LONER)
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body


@pytest.mark.parametrize("steps", [-2, 2])
async def test_codes_two_steps_away_are_refused(api, loner, steps):
    assert error_code(await verify_after_login(api, totp_now(loner.secret, steps), LONER), "INVALID_CODE")


async def test_a_used_code_is_refused(api, loner):
    code = totp_now(loner.secret)
    assert (await verify_after_login(api, code, LONER)).errors == []
    assert error_code(await verify_after_login(api, code, LONER), "INVALID_CODE")


@pytest.mark.parametrize("older", [0, -1])
async def test_an_older_step_after_a_newer_one_is_refused(api, loner, older):
    assert (await verify_after_login(api, totp_now(loner.secret, 1), LONER)).errors == []
    assert error_code(await verify_after_login(api, totp_now(loner.secret, older), LONER), "INVALID_CODE")


async def test_the_code_that_confirmed_enrolment_cannot_log_in(api, clinic):
    token = await signed_in(api, LONER)
    code = totp_now(await start_enrolment(api, token))
    assert (await confirm(api, token, code)).errors == []
    assert error_code(await verify_after_login(api, code, LONER), "INVALID_CODE")


@pytest.mark.parametrize("shape", sorted(MALFORMED))
async def test_codes_are_exactly_six_ascii_digits(api, loner, shape):
    code = totp_now(loner.secret)
    _, token = await api.login_token(LONER)
    assert error_code(await api.verify(token, MALFORMED[shape](code)), "BAD_USER_INPUT")
    # Refused before any check: the right code of that very step still works.
    assert (await api.verify(token, code)).errors == []


@pytest.mark.parametrize("shape", sorted(MALFORMED))
async def test_confirming_takes_exactly_six_ascii_digits(api, clinic, shape):
    token = await signed_in(api, LONER)
    code = totp_now(await start_enrolment(api, token))
    assert error_code(await confirm(api, token, MALFORMED[shape](code)), "BAD_USER_INPUT")
    assert (await confirm(api, token, code)).errors == []


# --- The second step of a login -------------------------------------------------------------


async def test_verifying_gives_a_new_full_token_and_spends_the_password_only_one(api, loner):
    _, password_only = await api.login_token(LONER)
    r = await api.verify(password_only, totp_now(loner.secret))
    payload = r.data["verifyTwoFactor"]
    assert payload["status"] == "AUTHENTICATED" and payload["token"] != password_only
    assert (await api.gql(ME, token=payload["token"])).data["me"]["email"] == LONER
    assert error_code(await api.verify(password_only, totp_now(loner.secret, 1)), "UNAUTHENTICATED")


# --- Disabling (rules 3, 4, 7) --------------------------------------------------------------


async def disable(api: Api, token: str, code: str) -> Result:
    return await api.gql(DISABLE, {"c": code}, token=token)


async def test_disabling_with_a_valid_code_turns_two_factor_off_and_ends_every_session(api, loner, clock):
    other = await api.full_login(LONER, loner.secret, clock)
    r = await disable(api, loner.token, totp_now(loner.secret, 1))
    assert r.errors == [] and r.data["disableTotp"] == {"email": LONER, "twoFactorEnabled": False}, r.body
    for token in (loner.token, other):
        assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")
    assert not await two_factor_enabled(api, LONER)


async def test_disabling_with_a_wrong_code_is_invalid_code_and_keeps_two_factor(api, loner):
    assert error_code(await disable(api, loner.token, wrong_code(loner.secret)), "INVALID_CODE")
    assert await two_factor_enabled(api, LONER)


async def test_disabling_while_enforced_is_two_factor_enforced(api, clinic, clock):
    member = await enrolled(api, MEMBER, clock)
    await enforcing_manager(api, clinic)
    assert error_code(await disable(api, member.token, totp_now(member.secret)), "TWO_FACTOR_ENFORCED")
    assert await two_factor_enabled(api, MEMBER)


async def test_switching_enforcement_off_keeps_two_factor_but_lets_users_disable_it(api, clinic, clock):
    manager = await enforcing_manager(api, clinic)
    _, enrolment_token = await api.login_token(MEMBER)
    member = await api.enrol(enrolment_token)
    await enforce(api, manager, clinic, on=False)
    clock.advance(60)
    assert await two_factor_enabled(api, MEMBER)
    assert (await disable(api, member.token, totp_now(member.secret))).errors == []
    assert not await two_factor_enabled(api, MEMBER)


# --- The audit log (rule 6) -----------------------------------------------------------------


async def test_enrolling_confirming_and_disabling_are_audited(api, clinic, clock):
    member = await enrolled(api, MEMBER, clock)
    assert (await disable(api, member.token, totp_now(member.secret))).errors == []
    r = await api.gql(AUDIT, {"id": clinic}, token=await signed_in(api, MANAGER))
    events = [edge["node"] for edge in r.data["account"]["auditEvents"]["edges"]]
    events = [e for e in events if e["action"].startswith("TOTP_")]
    assert [(e["action"], e["actor"], e["subject"], e["clientAddress"]) for e in events] == [
        (action, {"email": MEMBER}, {"email": MEMBER}, CLIENT_ADDRESS)
        for action in ("TOTP_DISABLED", "TOTP_CONFIRMED", "TOTP_ENROLMENT_STARTED")
    ]
