"""The operator's commands (`mandate user|account|member|report|audit`), run as real subprocesses
against the suite's database, their effects checked in the database and through the HTTP app:
a change made on the command line holds from the API's next request.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from datetime import datetime, timezone

import pytest

from mandate.models.tables import Account, AuditEvent, Membership, Session, User
from tests.support.api import Api
from tests.support.servers import COMMAND, Cli, assert_refused

GROUP, PRACTICE, CLINIC = "North Health", "Leeds Practice", "Leeds Clinic"
MANAGER, MEMBER, NEWCOMER = "manager@example.org", "member@example.org", "newcomer@example.org"


@pytest.fixture
async def group(seed) -> None:
    """North Health > Leeds Practice, managed by MANAGER, with MEMBER on the practice; NEWCOMER
    has a password and no role."""
    await seed({
        "users": [{"email": MANAGER}, {"email": MEMBER}, {"email": NEWCOMER}],
        "accounts": [{"name": GROUP, "managers": [MANAGER],
                      "children": [{"name": PRACTICE, "members": [MEMBER]}]}],
    })


async def pk(name: str) -> int:
    return (await Account.get(name=name)).id


async def tree_of(api: Api, email: str) -> list[dict]:
    """The caller's trees: name, viewerRole and children, nested."""
    _, token = await api.login_token(email)
    r = await api.gql("{ accounts { name viewerRole children { name children { name } } } }", token=token)
    assert not r.errors, r.body
    return r.data["accounts"]


async def events() -> list[tuple[str, int | None, int | None, int | None]]:
    return [(e.action, e.actor_id, e.subject_id, e.account_id) for e in await AuditEvent.all().order_by("id")]


# -- users -----------------------------------------------------------------------------------------


async def test_user_created_with_a_password_from_stdin_can_log_in(cli, api):
    out = cli.ok("user", "create", "Ann@Example.org", "--name", "Ann", "--password-stdin", stdin="ann-password-1\n")
    assert "ann@example.org" in out
    user = await User.get(email="ann@example.org")
    assert user.name == "Ann" and "ann-password-1" not in user.password_hash
    assert (await api.login("ann@example.org", "ann-password-1")).data["login"]["status"] == "AUTHENTICATED"
    assert await events() == [("USER_CREATED", None, user.id, None)]


def typed_at_prompts(cli: Cli, args: list[str], answers: list[str]) -> subprocess.CompletedProcess:
    """Runs the command with a terminal of its own as stdin and stderr (where getpass prompts when
    there is no controlling terminal), typing each answer once its prompt is shown."""
    main_end, terminal = os.openpty()
    process = subprocess.Popen([*COMMAND, *args], stdin=terminal, stdout=subprocess.PIPE, stderr=terminal,
                               text=True, cwd=cli.folder, env={**os.environ, "DATABASE_URL": cli.url},
                               start_new_session=True)
    os.close(terminal)
    shown, deadline = "", time.monotonic() + 30

    def read_some() -> bool:
        nonlocal shown
        if select.select([main_end], [], [], 0.1)[0]:
            try:
                shown += os.read(main_end, 1024).decode()
            except OSError:  # the command has ended: its terminal is gone
                return False
        return True

    for prompt, answer in zip(["Password: ", "The same again: "], answers):
        while prompt not in shown and time.monotonic() < deadline and read_some():
            pass
        shown = shown.split(prompt, 1)[-1]
        os.write(main_end, answer.encode() + b"\n")
    out = process.communicate(timeout=30)[0]
    while read_some() and select.select([main_end], [], [], 0)[0]:
        pass
    os.close(main_end)
    return subprocess.CompletedProcess(args, process.returncode, out, shown.replace("\r\n", "\n").lstrip("\n"))


async def test_user_create_asks_for_the_password_twice_on_a_terminal(cli, api):
    created = typed_at_prompts(cli, ["user", "create", "cat@example.org", "--name", "Cat"], ["cat-password-1"] * 2)
    assert created.returncode == 0, created.stderr
    assert (await api.login("cat@example.org", "cat-password-1")).data["login"]["status"] == "AUTHENTICATED"
    differ = typed_at_prompts(cli, ["user", "create", "dan@example.org", "--name", "Dan"], ["dan-password-1", "other"])
    assert_refused(differ, 2, "differ")
    assert not await User.filter(email="dan@example.org").exists()


async def test_user_created_without_a_password_cannot_log_in(cli, api):
    cli.ok("user", "create", "bob@example.org", "--name", "Bob", "--no-password")
    assert (await api.login("bob@example.org", "")).code == "INVALID_CREDENTIALS"


REFUSED_USER_CREATE = [
    (["not-an-email", "--name", "X", "--no-password"], None, ["email"]),
    (["x@example.org", "--name", "X", "--password-stdin"], "short\n", ["at least 8"]),
    (["x@example.org", "--name", "X", "--password-stdin"], "password1\n", ["commonly used"]),
    (["x@example.org", "--name", "X", "--password-stdin"], "X@Example.org\n", ["email"]),
    (["x@example.org", "--name", "X", "--password-stdin"], "", ["no password"]),
    (["x@example.org", "--name", "X"], "a-password-on-stdin\n", ["--password-stdin"]),  # no tty, no flag
    (["x@example.org", "--name", " ", "--no-password"], None, ["name"]),
]


async def test_a_refused_user_create_exits_2_in_one_line_and_writes_nothing(cli):
    results = cli.run_all(*((["user", "create", *args], stdin) for args, stdin, _ in REFUSED_USER_CREATE))
    for result, (_, _, words) in zip(results, REFUSED_USER_CREATE):
        assert_refused(result, 2, *words)
    assert await User.all().count() == 0 and await AuditEvent.all().count() == 0


async def test_creating_an_existing_user_is_refused(cli, group):
    assert_refused(cli.run("user", "create", MEMBER.upper(), "--name", "Again", "--no-password"), 2, "exists")
    assert (await User.get(email=MEMBER)).name == "Member"


async def test_disabling_a_user_ends_their_sessions_and_their_logins(cli, api, group):
    _, token = await api.login_token(MEMBER)
    assert (await api.gql("{ me { email } }", token=token)).data == {"me": {"email": MEMBER}}
    member = await User.get(email=MEMBER)

    out = cli.ok("user", "disable", MEMBER)
    assert "1 live session" in out
    assert (await api.gql("{ me { email } }", token=token)).code == "UNAUTHENTICATED"
    assert (await api.login(MEMBER)).code == "INVALID_CREDENTIALS"
    assert await Session.filter(user_id=member.id, revoked_at=None).count() == 0
    assert await Membership.filter(user_id=member.id).exists()  # roles stay, for a return
    assert await events() == [("USER_DISABLED", None, member.id, None)]


# -- accounts --------------------------------------------------------------------------------------


async def test_an_account_created_under_a_parent_given_by_api_id_shows_in_the_tree(cli, api, group):
    practice = await api.account_id((await api.login_token(MANAGER))[1], PRACTICE)
    out = cli.ok("account", "create", CLINIC, "--parent", practice)
    clinic = await Account.get(name=CLINIC)
    assert f"id {clinic.id}" in out and clinic.parent_id == await pk(PRACTICE)
    assert await tree_of(api, MANAGER) == [{"name": GROUP, "viewerRole": "MANAGER", "children": [
        {"name": PRACTICE, "children": [{"name": CLINIC}]}]}]
    assert await events() == [("ACCOUNT_CREATED", None, None, clinic.id)]


async def test_a_top_account_is_created_without_parent_and_a_sibling_name_is_refused(cli, group):
    cli.ok("account", "create", "South Care")
    assert (await Account.get(name="South Care")).parent_id is None
    assert_refused(cli.run("account", "create", PRACTICE, "--parent", str(await pk(GROUP))), 2, "exists")
    assert await Account.filter(name=PRACTICE).count() == 1


async def test_a_moved_account_brings_its_roles_and_enforcement_along(cli, api, seed, group):
    await seed({"users": [{"email": "south@example.org"}],
                "accounts": [{"name": "South Care", "members": ["south@example.org"]}]})
    cli.ok("account", "move", str(await pk("South Care")), "--parent", str(await pk(PRACTICE)))
    assert await tree_of(api, MEMBER) == [{"name": PRACTICE, "viewerRole": "MEMBER",
                                           "children": [{"name": "South Care", "children": []}]}]
    assert await events() == [("ACCOUNT_MOVED", None, None, await pk("South Care"))]

    # Under the group, South Care's member is bound by the group's enforcement; at the top, no more.
    await Account.filter(name=GROUP).update(enforced=True)
    assert (await api.login("south@example.org")).data["login"]["status"] == "ENROLMENT_REQUIRED"
    cli.ok("account", "move", str(await pk("South Care")), "--top")
    assert (await Account.get(name="South Care")).parent_id is None
    assert (await api.login("south@example.org")).data["login"]["status"] == "AUTHENTICATED"


@pytest.mark.parametrize("target", ["itself", "child", "grandchild"])
async def test_an_account_cannot_move_under_itself_or_a_descendant(cli, group, target):
    clinic = (await Account.create(name=CLINIC, parent_id=await pk(PRACTICE))).id
    parent = {"itself": await pk(GROUP), "child": await pk(PRACTICE), "grandchild": clinic}[target]
    assert_refused(cli.run("account", "move", str(await pk(GROUP)), "--parent", str(parent)), 2, "descendants")
    assert (await Account.get(name=GROUP)).parent_id is None
    assert await events() == []


BAD_IDS = [
    (["account", "move", "12abc", "--top"], ["not an account id"]),
    (["account", "move", "VXNlcjox", "--top"], ["not an account id"]),          # a User's API id
    (["account", "move", "999999", "--top"], ["no account 999999"]),
    (["account", "create", "X", "--parent", "999999"], ["no account 999999"]),
    (["member", "add", "1", "QWNjb3VudDox"], ["not a user"]),                   # an Account's API id
    (["member", "add", "999999", MEMBER], ["no account 999999"]),
    (["member", "remove", "1", "nobody@example.org"], ["no user nobody@example.org"]),
    (["user", "disable", "not@an@email"], ["email"]),
    (["report", "compliance", "999999"], ["no account 999999"]),
]


async def test_unknown_or_malformed_ids_exit_2_in_one_line(cli, group):
    before = (await events(), await Account.all().count(), await Membership.all().count())
    for result, (_, words) in zip(cli.run_all(*((args, None) for args, _ in BAD_IDS)), BAD_IDS):
        assert_refused(result, 2, *words)
    assert (await events(), await Account.all().count(), await Membership.all().count()) == before


# -- roles -----------------------------------------------------------------------------------------


async def test_member_add_change_and_remove_hold_from_the_next_request(cli, api, group):
    group_id, newcomer = await pk(GROUP), await User.get(email=NEWCOMER)
    assert await tree_of(api, NEWCOMER) == []

    assert "added" in cli.ok("member", "add", str(group_id), NEWCOMER)
    assert [a["viewerRole"] for a in await tree_of(api, NEWCOMER)] == ["MEMBER"]
    assert "changed" in cli.ok("member", "add", str(group_id), str(newcomer.id), "--role", "manager")
    assert [a["viewerRole"] for a in await tree_of(api, NEWCOMER)] == ["MANAGER"]
    assert "nothing to do" in cli.ok("member", "add", str(group_id), NEWCOMER, "--role", "MANAGER")
    cli.ok("member", "remove", str(group_id), NEWCOMER)
    assert await tree_of(api, NEWCOMER) == []

    assert await events() == [
        ("MEMBER_ADDED", None, newcomer.id, group_id),
        ("MEMBER_ROLE_CHANGED", None, newcomer.id, group_id),
        ("MEMBER_REMOVED", None, newcomer.id, group_id),
    ]


async def test_a_member_added_to_an_enforced_account_must_enrol_and_managers_see_the_event(cli, api, group):
    manager = await api.enrol((await api.login_token(MANAGER))[1])
    group_id = await api.account_id(manager.token, GROUP)
    r = await api.gql("mutation($a: ID!) { setEnforcement(accountId: $a, enforced: true) { name } }",
                      {"a": group_id}, token=manager.token)
    assert not r.errors, r.body

    cli.ok("member", "add", group_id, NEWCOMER)
    assert (await api.login(NEWCOMER)).data["login"]["status"] == "ENROLMENT_REQUIRED"
    log = await api.gql("query($id: ID!) { account(id: $id) { auditEvents(first: 1) { edges { node "
                        "{ action actor { email } subject { email } } } } } }", {"id": group_id}, token=manager.token)
    assert log.data["account"]["auditEvents"]["edges"][0]["node"] == {
        "action": "MEMBER_ADDED", "actor": None, "subject": {"email": NEWCOMER}}


async def test_removing_a_role_not_held_is_refused(cli, group):
    assert_refused(cli.run("member", "remove", str(await pk(GROUP)), MEMBER), 2, "no role")
    assert await Membership.filter(user__email=MEMBER).count() == 1


# -- reports ---------------------------------------------------------------------------------------


async def test_compliance_report_matches_the_api(cli, api, seed, group):
    await seed({"users": [{"email": "site@example.org"}],
                "accounts": [{"name": GROUP, "children": [
                    {"name": PRACTICE, "sites": [{"name": "Leeds Street", "members": ["site@example.org"]}]}]}]})
    manager = await api.enrol((await api.login_token(MANAGER))[1])
    practice = await api.account_id(manager.token, PRACTICE)
    r = await api.gql("query($id: ID!) { account(id: $id) { twoFactorCompliance { totalUsers enrolledUsers "
                      "pendingUsers { email } } } }", {"id": practice}, token=manager.token)
    compliance = r.data["account"]["twoFactorCompliance"]

    report = json.loads(cli.ok("report", "compliance", practice, "--json"))
    assert report["account"]["name"] == PRACTICE and report["account"]["enforced"] is False
    assert report["totalUsers"] == compliance["totalUsers"] == 3
    assert report["enrolledUsers"] == compliance["enrolledUsers"] == 1
    assert [u["email"] for u in report["pendingUsers"]] == [u["email"] for u in compliance["pendingUsers"]]

    table = cli.ok("report", "compliance", str(await pk(PRACTICE)))
    assert "3 users bound, 1 with 2FA, 2 still to set it up" in table
    assert {line.split()[0]: line.split()[-1] for line in table.splitlines() if "@" in line} == {
        MANAGER: "yes", MEMBER: "pending", "site@example.org": "pending"}


async def test_audit_export_prints_the_events_since_a_time_as_json_lines(cli, group):
    cli.ok("member", "add", str(await pk(GROUP)), NEWCOMER)
    since = datetime.now(timezone.utc)
    cli.ok("account", "create", CLINIC, "--parent", str(await pk(PRACTICE)))
    cli.ok("user", "disable", NEWCOMER)

    lines = cli.ok("audit", "export", "--since", since.isoformat()).splitlines()
    exported = [json.loads(line) for line in lines]
    assert [(e["action"], e["accountName"], e["subjectEmail"], e["actorId"]) for e in exported] == [
        ("ACCOUNT_CREATED", CLINIC, None, None), ("USER_DISABLED", None, NEWCOMER, None)]
    assert all(datetime.fromisoformat(e["at"]) >= since for e in exported)
    everything = cli.ok("audit", "export", "--since", "1h").splitlines()
    assert [json.loads(line)["action"] for line in everything] == ["MEMBER_ADDED", "ACCOUNT_CREATED", "USER_DISABLED"]
    assert_refused(cli.run("audit", "export", "--since", "last tuesday"), 2, "--since")


# -- production --------------------------------------------------------------------------------------


def test_production_serve_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MANDATE_SECRET_KEY"}
    database = tmp_path / "never-made.sqlite3"
    result = subprocess.run(
        [*COMMAND, "serve", "--port", "9"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**env, "MANDATE_ENV": "production", "DATABASE_URL": f"sqlite://{database}"},
    )
    assert_refused(result, 2, "MANDATE_SECRET_KEY")
    assert not database.exists() and not (tmp_path / ".mandate-secret-key").exists()


def test_an_unknown_mandate_env_is_refused(cli):
    assert_refused(cli.run("migrate", MANDATE_ENV="prod"), 2, "MANDATE_ENV")


def test_every_operator_command_answers_help(database_url, tmp_path):
    if database_url.startswith("postgres"):
        pytest.skip("no database involved: once is enough")
    commands = [["user", "create"], ["user", "disable"], ["account", "create"], ["account", "move"],
                ["member", "add"], ["member", "remove"], ["report", "compliance"], ["audit", "export"],
                ["rotate-key"]]
    runs = [subprocess.Popen([*COMMAND, *args, "--help"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
            for args in commands]
    for run, args in zip(runs, commands):
        out, _ = run.communicate(timeout=30)
        assert run.returncode == 0 and out.startswith(f"usage: mandate {' '.join(args)}"), out


# -- one audited path: the import writes the operator's events -------------------------------------


async def test_an_import_writes_the_same_audit_events_as_the_operators_commands(cli, group):
    """Creating a user, granting a role, raising one, re-enabling a disabled user and giving site
    access by import leave the events the commands leave, in the export."""
    cli.ok("user", "disable", MEMBER)
    since = datetime.now(timezone.utc)
    path = cli.folder / "import.json"
    path.write_text(json.dumps({
        "users": [{"email": "new@example.org", "name": "New", "password": "new-password"},
                  {"email": MEMBER, "password": "back-again-password"}],
        "accounts": [{"name": GROUP, "managers": [NEWCOMER], "children": [
            {"name": PRACTICE, "managers": [MEMBER], "sites": [{"name": "Leeds Street", "members": ["new@example.org"]}]}]}],
    }))
    cli.ok("import", str(path))

    exported = [json.loads(line) for line in cli.ok("audit", "export", "--since", since.isoformat()).splitlines()]
    assert [(e["action"], e["subjectEmail"], e["accountName"], e["actorId"]) for e in exported] == [
        ("USER_CREATED", "new@example.org", None, None),
        ("PASSWORD_SET_BY_OPERATOR", MEMBER, None, None),
        ("MEMBER_ADDED", NEWCOMER, GROUP, None),
        ("MEMBER_ROLE_CHANGED", MEMBER, PRACTICE, None),
        ("SITE_CREATED", None, PRACTICE, None),
        ("SITE_MEMBER_ADDED", "new@example.org", PRACTICE, None),
    ]
    # The same changes by the commands write the same events.
    cli.ok("member", "remove", GROUP, NEWCOMER)
    cli.ok("member", "add", GROUP, NEWCOMER, "--role", "manager")
    assert (await events())[-1] == ("MEMBER_ADDED", None, (await User.get(email=NEWCOMER)).id, await pk(GROUP))


# -- listings ----------------------------------------------------------------------------------------


async def test_account_list_shows_every_tree_with_ids_and_enforcement(cli, api, group):
    from mandate.gql.ids import to_global_id

    await Account.create(name=CLINIC, parent_id=await pk(PRACTICE))
    south = await Account.create(name="South Care")
    token = (await api.login_token(MANAGER))[1]
    ids = {name: await api.account_id(token, name) for name in (GROUP, PRACTICE, CLINIC)}
    await Account.filter(name=PRACTICE).update(enforced=True)
    practice_api_id = ids[PRACTICE]

    assert cli.ok("account", "list").splitlines() == [
        f"{GROUP}  (id {await pk(GROUP)}, API id {ids[GROUP]}): not enforced",
        f"  {PRACTICE}  (id {await pk(PRACTICE)}, API id {ids[PRACTICE]}): enforced here",
        f"    {CLINIC}  (id {await pk(CLINIC)}, API id {ids[CLINIC]}): "
        f"enforced from account {await pk(PRACTICE)} ({PRACTICE})",
        f"South Care  (id {south.id}, API id {to_global_id('Account', south.id)}): not enforced",
    ]
    [north, south] = json.loads(cli.ok("account", "list", "--json"))
    assert south["name"] == "South Care" and south["children"] == []
    [practice] = north["children"]
    assert (practice["apiId"], practice["enforcedHere"], practice["enforced"]) == (practice_api_id, True, True)
    assert practice["children"][0]["source"] == {"id": await pk(PRACTICE), "name": PRACTICE}
    assert (north["enforced"], north["source"]) == (False, None)


async def test_user_list_shows_ids_two_factor_and_who_is_disabled(cli, api, group):
    enrolled = await api.enrol((await api.login_token(MANAGER))[1])
    api_id = (await api.gql("{ me { id } }", token=enrolled.token)).data["me"]["id"]
    cli.ok("user", "disable", MEMBER)
    users = {u["email"]: u for u in json.loads(cli.ok("user", "list", "--json"))}
    assert users[MANAGER] == {"id": (await User.get(email=MANAGER)).id, "apiId": api_id, "email": MANAGER,
                              "name": "Manager", "twoFactorEnabled": True, "disabled": False}
    assert (users[MEMBER]["twoFactorEnabled"], users[MEMBER]["disabled"]) == (False, True)
    assert (users[NEWCOMER]["twoFactorEnabled"], users[NEWCOMER]["disabled"]) == (False, False)

    table = [line.split() for line in cli.ok("user", "list").splitlines()]
    assert table[0] == ["ID", "API", "ID", "EMAIL", "NAME", "2FA", "DISABLED"]
    assert [(row[2], row[-2], row[-1]) for row in table[1:]] == [
        (MANAGER, "on", "no"), (MEMBER, "off", "yes"), (NEWCOMER, "off", "no")]


# -- ACCOUNT as a path of names ------------------------------------------------------------------------


async def test_an_account_path_of_names_works_wherever_an_account_is_asked_for(cli, api, group):
    path = f"{GROUP}/{PRACTICE}"
    assert "added" in cli.ok("member", "add", path, NEWCOMER)
    assert [a["name"] for a in await tree_of(api, NEWCOMER)] == [PRACTICE]
    cli.ok("account", "create", CLINIC, "--parent", path)
    assert (await Account.get(name=CLINIC)).parent_id == await pk(PRACTICE)
    assert "Account" in cli.ok("report", "compliance", f"{path}/{CLINIC}")
    cli.ok("account", "move", f"{path}/{CLINIC}", "--top")
    assert (await Account.get(name=CLINIC)).parent_id is None
    cli.ok("member", "remove", path, NEWCOMER)
    assert await tree_of(api, NEWCOMER) == []


async def test_an_unknown_or_ambiguous_account_path_exits_2_in_one_line(cli, group):
    await Account.create(name=PRACTICE, parent_id=await pk(GROUP))  # a sibling of the same name, made behind the CLI's back
    before = (await events(), await Membership.all().count())
    unknown, elsewhere, ambiguous = cli.run_all(
        (["member", "add", f"{GROUP}/Nowhere", NEWCOMER], None),
        (["member", "add", PRACTICE, NEWCOMER], None),  # not a top account: a path starts at the top
        (["member", "add", f"{GROUP}/{PRACTICE}", NEWCOMER], None),
    )
    assert_refused(unknown, 2, "not an account id", "path")
    assert_refused(elsewhere, 2, "not an account id", "path")
    assert_refused(ambiguous, 2, "both have the path")
    assert (await events(), await Membership.all().count()) == before


# -- the import's keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data, where", [
    ({"acounts": [{"name": "Clinic"}]}, "the file: unknown key 'acounts'"),
    ({"users": [{"email": "x@example.org", "pasword": "secret-password"}]}, "users[0]: unknown key 'pasword'"),
    ({"accounts": [{"name": "Clinic", "children": [{"name": "Dental", "member": ["x@example.org"]}]}]},
     "accounts[0].children[0]: unknown key 'member'"),
    ({"accounts": [{"name": "Clinic", "sites": [{"name": "Leeds", "managers": ["x@example.org"]}]}]},
     "accounts[0].sites[0]: unknown key 'managers'"),
], ids=["top", "user", "child", "site"])
async def test_an_import_with_a_key_the_format_does_not_have_exits_2_and_writes_nothing(cli, data, where):
    path = cli.folder / "import.json"
    path.write_text(json.dumps({"users": [{"email": "y@example.org"}], **data}))
    assert_refused(cli.run("import", str(path)), 2, where, "nothing was imported")
    assert (await User.all().count(), await Account.all().count(), await AuditEvent.all().count()) == (0, 0, 0)


# -- a closed pipe -----------------------------------------------------------------------------------


def read_one_line_then_close(cli: Cli, *args: str) -> tuple[str, int, str]:
    """Like `mandate ... | head -1`: the first line, then the reader goes away."""
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=cli.folder, env={**os.environ, "DATABASE_URL": cli.url})
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read()
    return first, process.wait(timeout=60), err


async def test_a_closed_pipe_ends_audit_export_and_account_list_quietly(cli):
    # Far more than a pipe holds, so the command is still writing when the reader goes away.
    await AuditEvent.bulk_create([AuditEvent(at=datetime.now(timezone.utc), action="MEMBER_ADDED") for _ in range(3000)])
    await Account.bulk_create([Account(name=f"Clinic {i:04}") for i in range(3000)])
    for args in (["audit", "export", "--since", "1h"], ["account", "list"]):
        first, code, err = read_one_line_then_close(cli, *args)
        assert first.strip(), args
        assert (code, err) == (141, ""), (args, code, err)
