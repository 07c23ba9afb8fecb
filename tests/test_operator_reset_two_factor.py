"""`mandate user reset-2fa USER`, run as a real process against the suite's database: the
operator removes a user's 2FA (for one who lost their device and their recovery codes), ends
every session of theirs, and audits it with no actor; where enforcement binds them, their next
login must enrol. It refuses only a user that does not exist.
"""

from __future__ import annotations

from mandate.models.tables import AuditEvent, RecoveryCode, Session, TotpDevice, User
from tests.support.api import error_code
from tests.support.audit import audit_events
from tests.support.codes import totp_now
from tests.support.documents import ME
from tests.support.people import enrolled, signed_in
from tests.support.servers import assert_refused
from tests.support.worlds import LONER, MEMBER, enforcing_manager

REPLACE = "mutation($c: String!) { replaceTotp(code: $c) { secret } }"


async def test_reset_removes_the_users_two_factor_and_their_next_login_must_enrol(cli, api, clinic, clock):
    manager = await enforcing_manager(api, clinic)
    member = await enrolled(api, MEMBER, clock)
    user = await User.get(email=MEMBER)

    out = cli.ok("user", "reset-2fa", MEMBER)
    assert out.strip() == (f"Reset the 2FA of {MEMBER}: TOTP device and recovery codes removed, "
                           "every session of theirs ended.")
    assert error_code(await api.gql(ME, token=member.token), "UNAUTHENTICATED")
    assert not await TotpDevice.exists(user_id=user.id) and not await RecoveryCode.exists(user_id=user.id)
    assert (await api.login(MEMBER)).data["login"]["status"] == "ENROLMENT_REQUIRED"

    [event] = [e for e in await audit_events(api, manager, clinic) if e["action"] == "TWO_FACTOR_RESET"]
    assert event["actor"] is None and event["subject"] == {"email": MEMBER}


async def test_reset_drops_a_pending_replacement(cli, api, clinic, clock):
    loner = await enrolled(api, LONER, clock)
    r = await api.gql(REPLACE, {"c": totp_now(loner.secret)}, token=loner.token)
    assert r.errors == [], r.body
    cli.ok("user", "reset-2fa", LONER)
    assert not await Session.filter(totp_pending_secret__isnull=False).exists()
    assert (await api.login(LONER)).data["login"]["status"] == "AUTHENTICATED"  # unbound: no 2FA needed


async def test_reset_of_a_user_without_two_factor_is_no_refusal(cli, api, clinic):
    token = await signed_in(api, LONER)
    out = cli.ok("user", "reset-2fa", LONER)
    assert "they had no 2FA, every session of theirs ended" in out
    assert error_code(await api.gql(ME, token=token), "UNAUTHENTICATED")
    assert await AuditEvent.filter(action="TWO_FACTOR_RESET").count() == 1


async def test_reset_of_an_unknown_user_exits_2_in_one_line_and_writes_nothing(cli, clinic):
    before = await AuditEvent.all().count()
    assert_refused(cli.run("user", "reset-2fa", "nobody@example.org"), 2, "no user")
    assert_refused(cli.run("user", "reset-2fa", "999"), 2, "no user")
    assert await AuditEvent.all().count() == before


def test_reset_answers_help(cli):
    assert "lost" in cli.ok("user", "--help") and "USER" in cli.ok("user", "reset-2fa", "--help")
