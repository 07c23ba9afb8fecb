"""Recovery codes (API.md "Second factors"): 10, single use, shown once and stored only as hashes;
and no TOTP secret or token kept in the clear either."""

from __future__ import annotations

import base64

import pytest
from tortoise import connections

from tests.support.api import PASSWORD, Api, Result, error_code
from tests.support.audit import audit_actions
from tests.support.codes import totp_now, wrong_code
from tests.support.documents import REGENERATE, REMAINING
from tests.support.people import signed_in, start_enrolment, verify_after_login
from tests.support.worlds import LONER, MANAGER, MEMBER

TABLES = ["users", "sessions", "recovery_codes", "throttles", "audit_events"]


async def remaining(api: Api, token: str) -> int:
    r = await api.gql(REMAINING, token=token)
    assert not r.errors, r.body
    return r.data["me"]["recoveryCodesRemaining"]


async def regenerate(api: Api, token: str, code: str) -> Result:
    return await api.gql(REGENERATE, {"c": code}, token=token)


async def test_ten_distinct_recovery_codes_are_issued(api, member):
    assert len(set(member.recovery_codes)) == 10
    assert await remaining(api, member.token) == 10


async def test_a_recovery_code_passes_the_second_factor(api, member):
    r = await verify_after_login(api, member.recovery_codes[0], MEMBER)
    assert r.errors == [] and r.data["verifyTwoFactor"]["status"] == "AUTHENTICATED", r.body


async def test_a_recovery_code_works_once(api, member):
    assert (await verify_after_login(api, member.recovery_codes[0], MEMBER)).errors == []
    assert error_code(await verify_after_login(api, member.recovery_codes[0], MEMBER), "INVALID_CODE")


async def test_recovery_codes_remaining_counts_down(api, member):
    for used, code in enumerate(member.recovery_codes[:3], start=1):
        assert (await verify_after_login(api, code, MEMBER)).errors == []
        assert await remaining(api, member.token) == 10 - used


async def test_regenerating_replaces_every_recovery_code(api, member):
    r = await regenerate(api, member.token, totp_now(member.secret))
    assert r.errors == [], r.body
    fresh = r.data["regenerateRecoveryCodes"]
    assert len(set(fresh)) == 10 and not set(fresh) & set(member.recovery_codes)
    assert await remaining(api, member.token) == 10
    assert error_code(await verify_after_login(api, member.recovery_codes[1], MEMBER), "INVALID_CODE")
    assert (await verify_after_login(api, fresh[0], MEMBER)).errors == []


async def test_regenerating_with_a_wrong_code_keeps_the_old_codes(api, member):
    assert error_code(await regenerate(api, member.token, wrong_code(member.secret)), "INVALID_CODE")
    assert (await verify_after_login(api, member.recovery_codes[0], MEMBER)).errors == []


@pytest.mark.parametrize(
    "reshape",
    [
        lambda code: code.replace("-", " "),
        lambda code: code + "-abcde",
        lambda code: code.rsplit("-", 1)[0],
        lambda code: code + "\n",
        lambda code: code.upper().translate({c: c + 0xFEE0 for c in range(ord("A"), ord("Z") + 1)}),
        lambda code: "not a code",
    ],
    ids=["spaces", "too long", "too short", "newline", "full-width letters", "prose"],
)
async def test_a_malformed_recovery_code_is_bad_user_input(api, member, reshape):
    code = member.recovery_codes[0]
    assert error_code(await verify_after_login(api, reshape(code), MEMBER), "BAD_USER_INPUT")
    # Refused before any check: the code itself is still unused.
    assert (await verify_after_login(api, code, MEMBER)).errors == []


async def test_using_and_regenerating_recovery_codes_are_audited(api, member, clinic):
    assert (await verify_after_login(api, member.recovery_codes[0], MEMBER)).errors == []
    assert (await regenerate(api, member.token, totp_now(member.secret))).errors == []
    actions = await audit_actions(api, await signed_in(api, MANAGER), clinic, MEMBER)
    assert actions[:2] == ["RECOVERY_CODES_REGENERATED", "RECOVERY_CODE_USED"], actions


def forms(value: str) -> set[str]:
    """A value as it might be stored: as given, in either case, without dashes, past a prefix."""
    plain = value.replace("-", "")
    tail = value.split("_", 1)[-1]
    return {value, value.lower(), value.upper(), plain.lower(), plain.upper()} | ({tail} if len(tail) >= 16 else set())


async def stored_text() -> str:
    """Every value of every table that could hold a secret, as text."""
    connection = connections.get("default")
    values = []
    for table in TABLES:
        for row in await connection.execute_query_dict(f"SELECT * FROM {table}"):
            values.extend(str(value) for value in row.values())
    return "\n".join(values)


async def test_the_database_holds_no_secret_code_or_token_in_the_clear(api, member):
    _, password_only = await api.login_token(MEMBER)
    enrolling = await signed_in(api, LONER)
    pending_secret = await start_enrolment(api, enrolling)
    clear = [member.secret, pending_secret, member.token, password_only, enrolling, PASSWORD, *member.recovery_codes]
    secret_bytes = [base64.b32decode(s).hex() for s in (member.secret, pending_secret)]
    stored = await stored_text()
    assert MEMBER in stored  # the dump does read the rows
    leaked = [form for value in clear for form in forms(value) if form in stored]
    leaked += [raw for raw in secret_bytes if raw in stored.lower()]
    assert leaked == []
