"""The `mandate` command line, run as a real subprocess against a database of its own, and
checked through a live `mandate serve` over HTTP (one server per backend for the module)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mandate.models import clock as domain_clock

from tests.support.api import Api
from tests.support.databases import backend_of, empty_database, new_database
from tests.support.servers import COMMAND, Mandate, assert_refused, free_port, stop, wait_until_healthy

DEMO_PASSWORD = "demo-password"

# API.md's example file, as printed there.
API_EXAMPLE = {
    "users": [{"email": "ann@example.org", "name": "Ann", "password": "..."}],
    "accounts": [
        {"name": "North Health",
         "managers": ["ann@example.org"],
         "members": ["bob@example.org"],
         "sites": [{"name": "Leeds", "members": ["cat@example.org"]}],
         "children": [{"name": "North Health Dental", "sites": [], "children": []}]},
    ],
}
# The same with real passwords, and every user it names listed under "users".
EXAMPLE = {
    **API_EXAMPLE,
    "users": [
        {"email": "ann@example.org", "name": "Ann", "password": "ann-password"},
        {"email": "bob@example.org", "name": "Bob", "password": "bob-password"},
        {"email": "cat@example.org", "name": "Cat", "password": "cat-password"},
    ],
}
TREE = "{ accounts { name viewerRole sites { name } children { name } } }"


@dataclass
class Served:
    mandate: Mandate
    api: Api
    log: Path


@pytest.fixture(scope="module")
async def served(database_url, tmp_path_factory):
    """`mandate serve` on a database it finds unmigrated, for the whole module."""
    folder = tmp_path_factory.mktemp("mandate-cli")
    url, drop = await new_database(backend_of(database_url), folder)
    mandate = Mandate(url, folder)
    port, log = free_port(), folder / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*COMMAND, "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
            env=mandate.env(), cwd=folder,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base_url, log)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            yield Served(mandate, Api(client), log)
    finally:
        stop(process)
        await drop()


@pytest.fixture
async def mandate(served) -> Mandate:
    """The served database, emptied for this test; codes follow the live server's real clock."""
    domain_clock.offset = 0.0
    await empty_database(served.mandate.url)
    return served.mandate


@pytest.fixture
def api(served) -> Api:
    """The live server's API (in place of conftest's in-process app)."""
    return served.api


@pytest.fixture
async def unmigrated(database_url, tmp_path):
    url, drop = await new_database(backend_of(database_url), tmp_path)
    yield Mandate(url, tmp_path)
    await drop()


async def login_status(api: Api, email: str, password: str) -> str:
    """AUTHENTICATED (or another status), else the error code."""
    result = await api.login(email, password)
    return result.code if result.errors else result.data["login"]["status"]


async def read_tree(api: Api, email: str, password: str) -> list[dict]:
    _, token = await api.login_token(email, password)
    result = await api.gql(TREE, token=token)
    assert not result.errors, result.body
    return result.data["accounts"]


def summary_counts(output: str) -> dict[str, int]:
    """'Imported F: users: 3 created, 0 updated; accounts: 2 created; ...' -> {'users created': 3, ...}"""
    line = next(line for line in output.splitlines() if line.startswith("Imported "))
    counts = {}
    for part in line.split(": ", 1)[1].split(";"):
        area, numbers = part.split(":")
        for number, verb in re.findall(r"(\d+) (\w+)", numbers):
            counts[f"{area.strip()} {verb}"] = int(number)
    return counts


# -- help, migrate, serve ------------------------------------------------------------------------


def test_every_command_answers_help(tmp_path):
    runs = [subprocess.Popen([*COMMAND, *args, "--help"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
            for args in ([], ["serve"], ["migrate"], ["import"], ["demo"])]
    for run, name in zip(runs, ["", " serve", " migrate", " import", " demo"]):
        out, _ = run.communicate(timeout=30)
        assert run.returncode == 0
        assert out.startswith(f"usage: mandate{name}"), out


def test_migrate_applies_pending_migrations_then_reports_none(unmigrated):
    first = unmigrated.run("migrate")
    assert first.returncode == 0, first.stderr
    assert "Applied migration models.0001_initial" in first.stdout
    again = unmigrated.run("migrate")
    assert again.returncode == 0, again.stderr
    assert "Applied" not in again.stdout and "No migrations to apply" in again.stdout


async def test_serve_applies_migrations_to_a_fresh_database(served):
    assert "Applied migration models.0001_initial" in served.log.read_text()
    assert await login_status(served.api, "nobody@example.org", "password-123") == "INVALID_CREDENTIALS"


def test_unreachable_database_fails_in_one_line(database_url, tmp_path):
    url = ("postgres://postgres@127.0.0.1:1/mandate" if backend_of(database_url) == "postgres"
           else f"sqlite://{tmp_path / 'missing-folder' / 'mandate.sqlite3'}")
    assert_refused(Mandate(url, tmp_path).run("migrate"), 1, "database")


# -- import ----------------------------------------------------------------------------------------


async def test_import_creates_the_users_accounts_sites_and_roles_of_the_file(mandate, api):
    result = mandate.import_file(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert summary_counts(result.stdout) == {
        "users created": 3, "users updated": 0, "accounts created": 2, "sites created": 1,
        "roles granted": 2, "site access granted": 1,
    }
    north = {"name": "North Health", "sites": [{"name": "Leeds"}], "children": [{"name": "North Health Dental"}]}
    assert await read_tree(api, "ann@example.org", "ann-password") == [{**north, "viewerRole": "MANAGER"}]
    assert await read_tree(api, "bob@example.org", "bob-password") == [{**north, "viewerRole": "MEMBER"}]
    assert await read_tree(api, "cat@example.org", "cat-password") == [
        {"name": "North Health", "viewerRole": None, "sites": [{"name": "Leeds"}], "children": []}
    ]


def test_importing_the_same_file_again_creates_nothing(mandate):
    assert mandate.import_file(EXAMPLE).returncode == 0
    again = mandate.import_file(EXAMPLE)
    assert again.returncode == 0, again.stderr
    counts = summary_counts(again.stdout)
    # The file gives passwords again: each is a new password, which ends its user's sessions.
    assert counts.pop("sessions ended users") == 3, counts
    assert counts and all(n == 0 for key, n in counts.items() if not key.endswith("updated")), counts


async def test_reimport_without_a_password_keeps_the_users_password(mandate, api):
    mandate.import_file({"users": [{"email": "ann@example.org", "password": "first-password"}]})
    result = mandate.import_file({"users": [{"email": "ann@example.org", "name": "Ann Other"}]})
    assert result.returncode == 0, result.stderr
    assert await login_status(api, "ann@example.org", "first-password") == "AUTHENTICATED"


async def test_reimport_with_a_password_replaces_it(mandate, api):
    mandate.import_file({"users": [{"email": "ann@example.org", "password": "first-password"}]})
    result = mandate.import_file({"users": [{"email": "ann@example.org", "password": "second-password"}]})
    assert result.returncode == 0, result.stderr
    assert await login_status(api, "ann@example.org", "second-password") == "AUTHENTICATED"
    assert await login_status(api, "ann@example.org", "first-password") == "INVALID_CREDENTIALS"


async def test_import_reads_standard_input_for_a_dash(mandate, api):
    result = mandate.run("import", "-", stdin=json.dumps(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert await login_status(api, "ann@example.org", "ann-password") == "AUTHENTICATED"


DAN = {"email": "dan@example.org", "password": "dan-password"}


@pytest.mark.parametrize("content, words", [
    ('{"users": [', ["not JSON"]),
    ({"users": [DAN], "accounts": [{"name": "Dan's", "children": "none"}]}, ["children", "list"]),
    ({"users": [DAN], "accounts": [{"name": "Dan's", "members": ["not-an-email"]}]}, ["email"]),
], ids=["not-json", "wrong-shape", "bad-email"])
def test_a_bad_import_file_exits_2_and_writes_nothing(mandate, content, words):
    assert_refused(mandate.import_file(content), 2, *words)
    # What the bad file held before its fault is all still new to the database.
    after = mandate.import_file({"users": [DAN], "accounts": [{"name": "Dan's"}]})
    assert summary_counts(after.stdout)["users created"] == 1
    assert summary_counts(after.stdout)["accounts created"] == 1


async def test_api_md_example_imports_as_printed(mandate, api):
    """Users named in roles but not listed are added without a password, with a warning."""
    result = mandate.import_file(API_EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert summary_counts(result.stdout)["users created"] == 3
    assert "bob@example.org: added without a password" in result.stdout
    assert await login_status(api, "ann@example.org", "...") == "AUTHENTICATED"
    assert await login_status(api, "bob@example.org", "anything-at-all") == "INVALID_CREDENTIALS"


def test_a_missing_import_file_exits_2(mandate):
    assert_refused(mandate.run("import", str(mandate.folder / "no-such-file.json")), 2, "no-such-file.json")


# -- demo ------------------------------------------------------------------------------------------


async def test_demo_manager_logs_in_with_the_demo_password_and_sees_the_group(mandate, api):
    result = mandate.run("demo")
    assert result.returncode == 0, result.stderr
    assert "manager@example.org" in result.stdout and DEMO_PASSWORD in result.stdout
    assert await login_status(api, "manager@example.org", DEMO_PASSWORD) == "AUTHENTICATED"
    [group] = await read_tree(api, "manager@example.org", DEMO_PASSWORD)
    assert group["name"] == "Northwind Health" and group["viewerRole"] == "MANAGER"
    assert len(group["children"]) == 2


async def test_every_demo_login_printed_can_log_in(mandate, api):
    result = mandate.run("demo")
    emails = sorted(set(re.findall(r"[\w.]+@example\.org", result.stdout)))
    assert len(emails) == 5, result.stdout
    assert [await login_status(api, email, DEMO_PASSWORD) for email in emails] == ["AUTHENTICATED"] * 5


def test_demo_twice_refuses_the_second_time(mandate):
    assert mandate.run("demo").returncode == 0
    assert_refused(mandate.run("demo"), 2, "empty")


async def test_demo_refuses_a_database_with_any_user_and_writes_nothing(mandate, api):
    mandate.import_file({"users": [DAN]})
    assert_refused(mandate.run("demo"), 2, "empty")
    assert await login_status(api, "manager@example.org", DEMO_PASSWORD) == "INVALID_CREDENTIALS"


async def test_demo_if_empty_leaves_a_database_with_data_alone(mandate, api):
    mandate.import_file({"users": [DAN]})
    result = mandate.run("demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert await login_status(api, "manager@example.org", DEMO_PASSWORD) == "INVALID_CREDENTIALS"


# -- the README's automation script ----------------------------------------------------------------


async def test_readme_automation_script_switches_enforcement_on_the_demo_with_a_manage_token(mandate, api, served):
    """Walk-through 4 as written, on `make run`'s demo: the manager enrols, creates a MANAGE token,
    and the script uses it, twice in a row (in one 30 s step: no code to reuse)."""
    assert mandate.run("demo").returncode == 0
    _, token = await api.login_token("manager@example.org", DEMO_PASSWORD)
    await api.enrol(token)  # walk-through 1: this session passed the second factor
    created = await api.gql(
        'mutation { createApiToken(name: "enforcement script", scopes: [MANAGE], expiresInDays: 30) '
        "{ token apiToken { id name scopes expiresAt } } }", token=token)
    assert not created.errors, created.body
    api_token = created.data["createApiToken"]["token"]

    script = Path(__file__).parents[1] / "examples" / "set_enforcement.py"
    env = {**os.environ, "MANDATE_URL": f"{api.client.base_url}/graphql", "MANDATE_TOKEN": api_token}
    for _ in range(2):  # switched on, then on again: the same answer
        result = subprocess.run([sys.executable, str(script), "Riverside Dental", "on"], capture_output=True,
                                text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "Riverside Dental: enforced=True"
    tree = await api.gql("{ accounts { descendants { name twoFactorEnforcement { enforcedHere } } } }", token=api_token)
    enforced = [a["name"] for a in tree.data["accounts"][0]["descendants"] if a["twoFactorEnforcement"]["enforcedHere"]]
    assert enforced == ["Riverside Dental"]


async def test_demo_if_empty_prints_the_demo_logins_again_when_the_demo_is_loaded(mandate, api):
    """`make run` a second time still shows the logins it serves."""
    assert mandate.run("demo").returncode == 0
    result = mandate.run("demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert "already loaded" in result.stdout and "manager@example.org" in result.stdout
    assert top_names(await read_tree(api, "manager@example.org", DEMO_PASSWORD)) == ["Northwind Health"]


def top_names(tree: list[dict]) -> list[str]:
    return [account["name"] for account in tree]


def test_without_a_secret_key_a_development_key_is_kept_in_a_local_file_with_a_warning(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MANDATE_SECRET_KEY"}
    start = [sys.executable, "-c", "from mandate.gql.app import create_app; create_app()"]
    first = subprocess.run(start, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "MANDATE_SECRET_KEY is not set" in first.stderr
    key_file = tmp_path / ".mandate-secret-key"
    key = key_file.read_text()
    assert len(key) >= 40 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    subprocess.run(start, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60, check=True)
    assert key_file.read_text() == key  # kept, not replaced: secrets encrypted under it stay readable


# -- serve's address ---------------------------------------------------------------------------------


def test_serve_prints_the_playgrounds_address(served, api):
    assert f"Serving the API and its playground at {api.client.base_url}/graphql" in served.log.read_text()


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_refuses_a_port_outside_1_to_65535(unmigrated, port):
    result = unmigrated.run("serve", "--port", port)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--port" in result.stderr and "1 to 65535" in result.stderr and "Traceback" not in result.stderr


def test_serve_on_a_port_in_use_ends_in_one_line_and_writes_nothing(unmigrated):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = unmigrated.run("serve", "--port", str(port))
    assert_refused(result, 2, f"port {port}", "in use")
    assert "Applied migration" not in result.stdout  # refused before the database was touched


# -- a second `make run`: the demo as it stands --------------------------------------------------------


async def test_demo_if_empty_tells_how_the_demo_stands_now(mandate, api):
    assert mandate.run("demo").returncode == 0
    manager = await api.enrol((await api.login_token("manager@example.org", DEMO_PASSWORD))[1])
    group = await api.account_id(manager.token, "Northwind Health")
    switched = await api.gql("mutation($a: ID!) { setEnforcement(accountId: $a, enforced: true) { name } }",
                             {"a": group}, token=manager.token)
    assert not switched.errors, switched.body
    assert mandate.run("user", "disable", "nurse@example.org").returncode == 0

    result = mandate.run("demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    now = {line.split()[0]: line for line in result.stdout.splitlines() if "@example.org" in line}
    assert now["manager@example.org"].endswith("demo password, 2FA set up")
    assert now["nurse@example.org"].endswith("password changed or removed")
    assert now["dentist@example.org"].endswith("demo password, no 2FA yet")
    assert "Enforcement is on for Northwind Health." in result.stdout
    assert "Every demo login has the password" not in result.stdout and "enforced nowhere" not in result.stdout


async def test_demo_if_empty_does_not_take_a_user_of_the_demos_email_for_the_demo(mandate, api):
    mandate.import_file({"users": [{"email": "manager@example.org", "password": "their-own-password"}]})
    result = mandate.run("demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert "already loaded" not in result.stdout and DEMO_PASSWORD not in result.stdout
    assert "not the demo organisation" in result.stdout
