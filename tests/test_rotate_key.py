"""Key rotation (secrets at rest): MANDATE_SECRET_KEY is a list, the first key encrypts and every
key decrypts; `mandate rotate-key` re-encrypts every stored TOTP secret under the first, so the
old key can then be dropped."""

from __future__ import annotations

import pytest

from mandate.config import reload_settings
from mandate.models.tables import AuditEvent, Session, TotpDevice, User
from tests.support.api import PASSWORD
from tests.support.codes import totp_now
from tests.support.servers import assert_refused

KEY_A, KEY_B = "key-a-" + "a" * 40, "key-b-" + "b" * 40
ENROLLED, PENDING = "enrolled@example.org", "pending@example.org"


@pytest.fixture
def keys(monkeypatch):
    """use(keys): the keys this process serves with from now on, as MANDATE_SECRET_KEY says."""

    def use(value: str) -> None:
        monkeypatch.setenv("MANDATE_SECRET_KEY", value)
        reload_settings()

    return use


@pytest.fixture
async def under_key_a(api, seed, keys) -> dict[str, str]:
    """ENROLLED has 2FA and PENDING has started enrolling, both under key A: their secrets."""
    keys(KEY_A)
    await seed({"users": [{"email": ENROLLED}, {"email": PENDING}]})
    enrolled = await api.enrol((await api.login_token(ENROLLED))[1])
    _, token = await api.login_token(PENDING)
    pending = (await api.gql("mutation { enrolTotp { secret } }", token=token)).data["enrolTotp"]["secret"]
    return {ENROLLED: enrolled.secret, PENDING: pending, "pending token": token}


async def stored() -> list[str | None]:
    """Every stored secret: the devices' confirmed ones, then the sessions' pending ones."""
    return [d.secret for d in await TotpDevice.all().order_by("id")] + [
        s.totp_pending_secret for s in await Session.all().order_by("id")
    ]


async def test_after_rotation_the_new_key_alone_reads_every_secret(api, cli, keys, clock, under_key_a):
    before = await stored()
    out = cli.run("rotate-key", MANDATE_SECRET_KEY=f"{KEY_B},{KEY_A}")
    assert out.returncode == 0, out.stderr
    assert "Re-encrypted 2 TOTP secret(s) of 2 user(s)" in out.stdout
    after = await stored()
    assert all(new != old for old, new in zip(before, after) if old is not None)
    assert await AuditEvent.filter(action="SECRETS_REENCRYPTED", actor_id=None).count() == 1

    keys(KEY_B)  # key A is gone
    token = await api.full_login(ENROLLED, under_key_a[ENROLLED], clock)
    assert (await api.gql("{ me { twoFactorEnabled } }", token=token)).data == {"me": {"twoFactorEnabled": True}}
    confirmed = await api.gql("mutation($c: String!) { confirmTotp(code: $c) { user { twoFactorEnabled } } }",
                              {"c": totp_now(under_key_a[PENDING])}, token=under_key_a["pending token"])
    assert confirmed.data == {"confirmTotp": {"user": {"twoFactorEnabled": True}}}, confirmed.body


async def test_rotation_refuses_and_changes_nothing_when_a_secret_decrypts_under_no_key(cli, under_key_a):
    before = await stored()
    assert_refused(cli.run("rotate-key", MANDATE_SECRET_KEY=KEY_B), 2, "2 user(s)", "nothing was changed")
    assert await stored() == before
    assert await AuditEvent.filter(action="SECRETS_REENCRYPTED").count() == 0


async def test_without_rotation_dropping_the_old_key_is_an_incident_that_costs_no_attempt(
    api, keys, clock, under_key_a, caplog
):
    """Key A dropped too early: the code check cannot decrypt the secret. The client gets a clear
    INTERNAL_SERVER_ERROR (HTTP 200, no trace, no key detail), the operators a log line, and the
    user loses nothing: six tries in a row are never RATE_LIMITED, and none is logged as a
    failed code."""
    keys(KEY_B)
    clock.advance(30)
    status, token = await api.login_token(ENROLLED, PASSWORD)
    assert status == "TWO_FACTOR_REQUIRED"
    for _ in range(6):
        result = await api.verify(token, totp_now(under_key_a[ENROLLED]))
        assert result.status == 200 and result.code == "INTERNAL_SERVER_ERROR"
        assert "operators" in result.errors[0]["message"] and result.data is None
    assert "rotate-key" in caplog.text
    user = await User.get(email=ENROLLED)
    assert not await AuditEvent.filter(subject_id=user.id, action="SECOND_FACTOR_FAILED").exists()

    keys(f"{KEY_B},{KEY_A}")  # the old key back: the same user gets in at once
    clock.advance(30)
    assert (await api.verify(token, totp_now(under_key_a[ENROLLED]))).data["verifyTwoFactor"]["status"] == "AUTHENTICATED"


def test_rotate_key_in_production_without_a_key_is_refused(cli):
    env = {"MANDATE_ENV": "production", "MANDATE_SECRET_KEY": ""}
    assert_refused(cli.run("rotate-key", **env), 2, "MANDATE_SECRET_KEY")
