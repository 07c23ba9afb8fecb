"""The log of a real `mandate serve` (as production runs it): JSON lines on stderr, one per request
with its id, operation, user id, outcome and duration, and never a password, token, secret or code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mandate.models import clock as domain_clock
from mandate.models.tables import User
from tests.support.api import Api, PASSWORD
from tests.support.codes import totp_now
from tests.support.databases import backend_of
from tests.support.servers import COMMAND, free_port, wait_until_healthy

MEMBER = "member@example.org"
WRONG_PASSWORD, WRONG_CODE = "not-the-password-42", "000000"


@dataclass
class Served:
    api: Api
    stderr: Path
    sqlite: bool
    request_ids: list[str] = field(default_factory=list)  # of every answer, in order

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def request_lines(self, wanted: list[str]) -> dict[str, dict]:
        """The request lines of these request ids, waiting for the server to write them (a line
        is written once the answer has gone)."""
        deadline = time.monotonic() + 10
        while True:
            found = {}
            for line in self.lines():
                if line.startswith("{") and '"mandate.request"' in line:
                    entry = json.loads(line)
                    if entry["request_id"] in wanted:
                        found[entry["request_id"]] = entry
            if len(found) == len(set(wanted)) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
async def served(database_url, tmp_path_factory):
    """`mandate serve` on the suite's database with MANDATE_ENV=production, stderr kept."""
    folder = tmp_path_factory.mktemp("mandate-logs")
    port, stderr = free_port(), folder / "stderr.log"
    env = {**os.environ, "DATABASE_URL": database_url, "MANDATE_ENV": "production", "PYTHONUNBUFFERED": "1"}
    with stderr.open("w") as err:
        server = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=err, env=env, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    served = None

    async def keep_id(response: httpx.Response) -> None:
        served.request_ids.append(response.headers["x-request-id"])

    try:
        wait_until_healthy(server, base, stderr)
        async with httpx.AsyncClient(base_url=base, timeout=10, event_hooks={"response": [keep_id]}) as client:
            served = Served(Api(client), stderr, backend_of(database_url) == "sqlite")
            yield served
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def live(served) -> Served:
    """The live server keeps real time: so do the codes computed here. Starts well inside a TOTP
    step, so that the codes of the steps either side stay acceptable for the whole test."""
    domain_clock.offset = 0.0
    if time.time() % 30 > 25:
        time.sleep(30.5 - time.time() % 30)
    served.request_ids.clear()
    return served


async def test_a_whole_login_flow_leaves_no_secret_in_the_log(live, seed):
    api = live.api
    await seed({"users": [{"email": MEMBER}], "accounts": [{"name": "Group", "members": [MEMBER]}]})
    member_id = (await User.get(email=MEMBER)).id
    seen: list[str] = [PASSWORD, WRONG_PASSWORD, WRONG_CODE]

    assert (await api.login(MEMBER, WRONG_PASSWORD)).code == "INVALID_CREDENTIALS"
    _, first = await api.login_token(MEMBER)
    enrolment = (await api.gql("mutation { enrolTotp { secret otpauthUri } }", token=first)).data["enrolTotp"]
    secret = enrolment["secret"]
    confirm_code = totp_now(secret, -1)
    confirmed = await api.gql("mutation($c: String!) { confirmTotp(code: $c) { recoveryCodes token } }",
                              {"c": confirm_code}, token=first)
    recovery = confirmed.data["confirmTotp"]["recoveryCodes"]
    _, password_only = await api.login_token(MEMBER)
    assert (await api.verify(password_only, WRONG_CODE)).code == "INVALID_CODE"
    verify_code = totp_now(secret)
    full = (await api.verify(password_only, verify_code)).data["verifyTwoFactor"]["token"]
    regenerate_code = totp_now(secret, 1)
    regenerated = await api.gql("mutation($c: String!) { regenerateRecoveryCodes(code: $c) }",
                                {"c": regenerate_code}, token=full)
    new_recovery = regenerated.data["regenerateRecoveryCodes"]
    _, second = await api.login_token(MEMBER)
    by_recovery = (await api.verify(second, new_recovery[0])).data["verifyTwoFactor"]["token"]
    assert (await api.gql("mutation { logout }", token=by_recovery)).data == {"logout": True}
    bogus = "mdt_" + "x" * 43
    assert (await api.gql("{ me { id } }", token=bogus)).code == "UNAUTHENTICATED"
    seen += [first, password_only, full, second, by_recovery, bogus, secret, enrolment["otpauthUri"],
             confirm_code, verify_code, regenerate_code, *recovery, *new_recovery]

    lines = live.request_lines(live.request_ids)
    assert len(lines) == len(live.request_ids) == 12
    log = live.stderr.read_text()
    for value in seen:
        digits_alone = re.compile(rf"(?<![0-9]){re.escape(value)}(?![0-9])")
        assert not digits_alone.search(log), f"{value!r} is in the log"

    flow = [(lines[i]["operation"], lines[i]["outcome"], lines[i]["user_id"]) for i in live.request_ids]
    assert flow == [
        ("login", "INVALID_CREDENTIALS", None),
        ("login", "ok", None),
        ("enrolTotp", "ok", member_id),
        ("confirmTotp", "ok", member_id),
        ("login", "ok", None),
        ("verifyTwoFactor", "INVALID_CODE", member_id),
        ("verifyTwoFactor", "ok", member_id),
        ("regenerateRecoveryCodes", "ok", member_id),
        ("login", "ok", None),
        ("verifyTwoFactor", "ok", member_id),
        ("logout", "ok", member_id),
        ("me", "UNAUTHENTICATED", None),
    ]
    assert all(isinstance(lines[i]["duration_ms"], float) and lines[i]["status"] == 200 for i in lines)


async def test_an_api_token_never_reaches_the_log_and_its_requests_name_its_owner(live, seed):
    api = live.api
    await seed({"users": [{"email": MEMBER}], "accounts": [{"name": "Group", "managers": [MEMBER]}]})
    member_id = (await User.get(email=MEMBER)).id
    _, session = await api.login_token(MEMBER)
    login = await api.enrol(session)
    created = await api.gql('mutation { createApiToken(name: "script", scopes: [MANAGE]) { token } }', token=login.token)
    token = created.data["createApiToken"]["token"]
    assert not (await api.gql("{ accounts { id } }", token=token)).errors
    assert (await api.gql('mutation { createApiToken(name: "x", scopes: [READ]) { token } }', token=token)).code == "FORBIDDEN"
    assert (await api.gql("mutation { logout }", token=token)).data == {"logout": True}
    assert (await api.gql("{ me { id } }", token=token)).code == "UNAUTHENTICATED"

    log = live.stderr.read_text()
    assert token not in log and token.removeprefix("mandate_pat_") not in log
    lines = live.request_lines(live.request_ids)
    assert [(lines[i]["operation"], lines[i]["outcome"], lines[i]["user_id"]) for i in live.request_ids][-4:] == [
        ("accounts", "ok", member_id),
        ("createApiToken", "FORBIDDEN", member_id),
        ("logout", "ok", member_id),
        ("me", "UNAUTHENTICATED", None),
    ]


async def test_every_line_is_json_and_uvicorn_access_log_is_off(live):
    await live.api.client.get("/healthz")
    live.request_lines(live.request_ids)
    entries = [json.loads(line) for line in live.lines() if not line.startswith("mandate serve: warning:")]
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert all(entry["logger"] != "uvicorn.access" for entry in entries)
    assert not any("HTTP/1.1" in entry["msg"] for entry in entries)
    assert "healthz" in {entry.get("operation") for entry in entries}


@pytest.mark.parametrize("incoming, kept", [
    ("trace-42.a:b", True),
    ("has spaces", False),
    ("x" * 129, False),
])
async def test_a_sane_incoming_request_id_is_kept_else_one_is_made(live, incoming, kept):
    response = await live.api.client.get("/healthz", headers={"X-Request-Id": incoming})
    request_id = response.headers["x-request-id"]
    assert (request_id == incoming) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert live.request_lines([request_id])[request_id]["path"] == "/healthz"


def test_production_serve_warns_on_sqlite(live):
    warned = any(line.startswith("mandate serve: warning: MANDATE_ENV=production on SQLite") for line in live.lines())
    assert warned is live.sqlite


async def test_each_answer_to_a_repeated_query_is_logged_with_its_caller(live, seed):
    await seed({"users": [{"email": MEMBER}], "accounts": [{"name": "Group", "members": [MEMBER]}]})
    member_id = (await User.get(email=MEMBER)).id
    _, token = await live.api.login_token(MEMBER)
    live.request_ids.clear()
    for _ in range(2):
        assert not (await live.api.gql("{ me { id } }", token=token)).errors
    lines = live.request_lines(live.request_ids)
    assert [(lines[i]["operation"], lines[i]["user_id"]) for i in live.request_ids] == [("me", member_id)] * 2
