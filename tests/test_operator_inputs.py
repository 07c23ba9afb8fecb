"""What the operator's command line lets in (issue 12): no text the database cannot store, no
email with invisible characters or that looks like an existing user's, and a password set by
the operator ends the user's sessions. Real `mandate` subprocesses, checked in the database and
through the HTTP app."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mandate.models.tables import Account, AuditEvent, Session, Site, User
from tests.support.servers import COMMAND, Cli, assert_refused

ANN, BOB = "ann@example.org", "bob@example.org"
CYRILLIC_ANN = "\u0430nn@example.org"     # а: CYRILLIC SMALL LETTER A
ZERO_WIDTH_ANN = "a\u200bnn@example.org"  # ZERO WIDTH SPACE after the a


def import_file(cli: Cli, data: object):
    path = cli.folder / "import.json"
    path.write_text(json.dumps(data))  # ensure_ascii: "\u0000" and "\ud800" stay JSON escapes
    return cli.run("import", str(path))


async def counts() -> tuple[int, ...]:
    return (await User.all().count(), await Account.all().count(), await Site.all().count(),
            await Session.all().count(), await AuditEvent.all().count())


@pytest.mark.parametrize("where", ["email", "name", "password", "account", "site", "member", "surrogate"])
async def test_an_import_with_unstorable_text_anywhere_exits_2_in_one_line_and_writes_nothing(cli, seed, where):
    await seed({"users": [{"email": BOB}]})
    bad = "ann\u0000x"
    user = {"email": ANN, "name": "Ann", "password": "ann-password"}
    account = {"name": "Clinic", "members": [BOB], "sites": [{"name": "Leeds"}]}
    if where in ("email", "name", "password"):
        user[where] = bad + "@example.org" if where == "email" else bad
    elif where == "account":
        account["name"] = bad
    elif where == "site":
        account["sites"][0]["name"] = bad
    elif where == "member":
        account["members"] = [bad + "@example.org"]
    else:
        account["sites"][0]["name"] = "Leeds \ud800"
    before = await counts()
    assert_refused(import_file(cli, {"users": [user], "accounts": [account]}), 2, "nothing was imported")
    assert await counts() == before


def run_bytes(cli: Cli, args: list[bytes], stdin: bytes = b"") -> subprocess.CompletedProcess:
    """`mandate` with arguments and standard input as raw bytes (not always UTF-8)."""
    done = subprocess.run([*COMMAND, *args], input=stdin, capture_output=True, cwd=cli.folder, timeout=60,
                          env={**os.environ, "DATABASE_URL": cli.url})
    return subprocess.CompletedProcess(args, done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_user_create_refuses_unstorable_email_name_or_password(cli, seed):
    """A command line's bytes that are not UTF-8 reach Python as lone surrogates; standard input
    can carry a NUL, or bytes that are not UTF-8 at all."""
    await seed({"users": [{"email": BOB}]})
    before = await counts()
    create = [b"user", b"create"]
    results = {
        "email": run_bytes(cli, [*create, b"ann\xff@example.org", b"--name", b"Ann", b"--no-password"]),
        "name": run_bytes(cli, [*create, ANN.encode(), b"--name", b"Ann\xff", b"--no-password"]),
        "password": run_bytes(cli, [*create, ANN.encode(), b"--name", b"Ann", b"--password-stdin"], b"ann-pass\x00word\n"),
        "not UTF-8": run_bytes(cli, [*create, ANN.encode(), b"--name", b"Ann", b"--password-stdin"], b"ann-pass\xffword\n"),
    }
    for result in results.values():
        assert_refused(result, 2)
    assert "'email'" in results["email"].stderr and "'name'" in results["name"].stderr
    assert "U+0000" in results["password"].stderr
    assert await counts() == before


# -- emails that look alike ------------------------------------------------------------------------


@pytest.mark.parametrize("lookalike", [CYRILLIC_ANN, ZERO_WIDTH_ANN, "ANN@EXAMPLE.0RG"], ids=["cyrillic", "zero-width", "digit"])
async def test_import_refuses_an_email_that_looks_like_an_existing_users(cli, seed, lookalike):
    await seed({"users": [{"email": ANN}]})
    before = await counts()
    result = import_file(cli, {"users": [{"email": lookalike, "password": "ann-password"}]})
    assert_refused(result, 2, "nothing was imported")
    assert ("U+200B" if lookalike == ZERO_WIDTH_ANN else "looks like the existing user 'ann@example.org'") in result.stderr
    assert await counts() == before


@pytest.mark.parametrize("lookalike", [CYRILLIC_ANN, ZERO_WIDTH_ANN], ids=["cyrillic", "zero-width"])
async def test_user_create_refuses_an_email_that_looks_like_an_existing_users(cli, seed, lookalike):
    await seed({"users": [{"email": ANN}]})
    before = await counts()
    assert_refused(cli.run("user", "create", lookalike, "--name", "Ann", "--no-password"), 2, "email")
    assert await counts() == before


async def test_one_file_cannot_bring_two_lookalikes_either(cli):
    """The issue's file: both spellings, and the one named only in a role, in one import."""
    result = import_file(cli, {"users": [{"email": ANN, "password": "ann-password"}],
                               "accounts": [{"name": "Clinic", "members": [CYRILLIC_ANN]}]})
    assert_refused(result, 2, "accounts[0].members[0]", "looks like")
    assert await counts() == (0, 0, 0, 0, 0)


async def test_a_plain_new_email_still_imports_and_logs_in(cli, seed, api):
    await seed({"users": [{"email": ANN}]})
    out = cli.ok("import", str(_written(cli, {"users": [{"email": "anna@example.org", "password": "anna-password"}]})))
    assert "users: 1 created" in out
    assert (await api.login("anna@example.org", "anna-password")).data["login"]["status"] == "AUTHENTICATED"
    assert cli.ok("user", "create", "annie@example.org", "--name", "Annie", "--no-password")


async def test_login_with_an_invisible_character_in_the_email_is_bad_user_input(api, seed):
    """No user can have such an email, so the answer tells nothing about who exists; and it is
    refused before the throttle counts anything."""
    await seed({"users": [{"email": ANN}]})
    result = await api.login(ZERO_WIDTH_ANN)
    assert result.code == "BAD_USER_INPUT" and "U+200B" in result.errors[0]["message"]
    assert await Session.all().count() == 0


def _written(cli: Cli, data: object):
    path = cli.folder / "import.json"
    path.write_text(json.dumps(data))
    return path


# -- passwords set by the operator -----------------------------------------------------------------


async def test_a_password_given_by_the_import_ends_that_users_sessions_only(cli, seed, api):
    await seed({"users": [{"email": ANN}, {"email": BOB}]})
    _, ann_token = await api.login_token(ANN)
    _, ann_other = await api.login_token(ANN)
    _, bob_token = await api.login_token(BOB)
    # The same password again: a password the file gives is a new password.
    out = cli.ok("import", str(_written(cli, {"users": [{"email": ANN, "password": "password-123"}, {"email": BOB, "name": "Bob B"}]})))
    assert "sessions ended: 1 users (2 live)" in out
    for token in (ann_token, ann_other):
        assert (await api.gql("{ me { email } }", token=token)).code == "UNAUTHENTICATED"
    assert (await api.gql("{ me { email } }", token=bob_token)).data["me"]["email"] == BOB
    ann = await User.get(email=ANN)
    events = [(e.action, e.actor_id, e.subject_id) for e in await AuditEvent.all().order_by("id")]
    assert events == [("PASSWORD_SET_BY_OPERATOR", None, ann.id)]
    _, fresh = await api.login_token(ANN)  # the password itself works
    assert (await api.gql("{ me { email } }", token=fresh)).data["me"]["email"] == ANN


async def test_a_failed_import_ends_no_session(cli, seed, api):
    await seed({"users": [{"email": ANN}]})
    _, token = await api.login_token(ANN)
    result = import_file(cli, {"users": [{"email": ANN, "password": "new-password"}, {"email": "not an email"}]})
    assert_refused(result, 2, "nothing was imported")
    assert (await api.gql("{ me { email } }", token=token)).data["me"]["email"] == ANN
    assert await AuditEvent.all().count() == 0
