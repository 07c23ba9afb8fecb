"""A database that does not answer (issue 12, items 5 and 6): every request is answered in JSON,
HTTP 503, SERVICE_UNAVAILABLE with `retryAfter` and no partial data, wherever the failure is met
(resolving the caller, a resolver, a health check); anything else unexpected is a
masked JSON 500; /readyz tells a read-only database from one that takes writes; and a real
PostgreSQL restarted under load from two server processes loses no acknowledged write, answers
nothing but JSON, and fails no request that began after it was back.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import json
import logging
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiosqlite
import asyncpg
import httpx
import pyotp
import pytest
import tortoise.exceptions
from tortoise import connections
from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.backends.sqlite.client import SqliteTransactionWrapper

from mandate.gql import observability
from mandate.models import callers
from mandate.models.tables import Session
from tests.support.api import Api, CLIENT_ADDRESS, client_with_settings
from tests.support.databases import BACKENDS, backend_of, on_server
from tests.support.documents import SET_ENFORCEMENT
from tests.support.servers import COMMAND, Mandate, free_port, stop, wait_until_healthy
from tests.support.worlds import MANAGER, MEMBER

RETRY_AFTER = 2
GRAPHQL_RESPONSE_TYPE = "application/graphql-response+json; charset=utf-8"
READ = {"query": "{ accounts { id name } me { email } }"}
LOGIN = {"query": 'mutation { login(email: "member@example.org", password: "password-123") { token } }'}


@asynccontextmanager
async def database_gone():
    """The suite's database stops answering. PostgreSQL: its connections are closed and new ones
    are refused (a port where nothing listens). SQLite, whose one connection stays open for the
    process's life: every statement fails as on a broken disk (tortoise's SQLite client never
    releases its lock when opening the file fails, so a failed reopening cannot be staged)."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        await client.close()
        client.port, kept = free_port(), client.port  # nothing listens there once it is free
        try:
            yield
        finally:
            await client.close()
            client.port = kept
        return

    async def broken_disk(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("execute", "execute_fetchall", "execute_insert", "executemany", "executescript"):
            patch.setattr(aiosqlite.Connection, name, broken_disk)
        yield


def assert_unavailable(response: httpx.Response, media_type: str = "application/json", **payload) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert response.json() == {**payload, "errors": [{
        "message": "The service cannot reach its database just now: try again shortly.",
        "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": RETRY_AFTER},
    }]}


@pytest.fixture
async def member_token(api, clinic) -> str:
    _, token = await api.login_token(MEMBER)
    return token


# --- every route answers 503 in JSON -----------------------------------------------------------


async def test_a_query_is_answered_503_when_the_database_is_gone(client, member_token):
    async with database_gone():
        response = await client.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
    assert_unavailable(response)


async def test_authentication_and_resolvers_answer_503(monkeypatch, member_token):
    async with client_with_settings(monkeypatch) as http:
        async with database_gone():
            read = await http.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
            login = await http.post("/graphql", json=LOGIN)
            nothing_to_read = await http.post("/graphql", json={"query": "{ __typename }"})
    assert_unavailable(read)  # authentication fails first
    assert_unavailable(login)  # the resolver fails
    assert nothing_to_read.json() == {"data": {"__typename": "Query"}}  # no database, no outage


async def test_a_mutation_that_fails_on_the_way_writes_nothing(monkeypatch, clinic):
    before = await Session.all().count()
    async with client_with_settings(monkeypatch) as http:
        async with database_gone():
            assert_unavailable(await http.post("/graphql", json=LOGIN))
    assert await Session.all().count() == before


async def test_the_answer_takes_the_media_type_accept_asks_for(client, member_token):
    headers = {"Authorization": f"Bearer {member_token}", "Accept": "application/graphql-response+json"}
    async with database_gone():
        response = await client.post("/graphql", json=READ, headers=headers)
    assert_unavailable(response, GRAPHQL_RESPONSE_TYPE)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_checks_answer_503_in_json(client, path):
    async with database_gone():
        response = await client.get(path)
    assert_unavailable(response, status="unavailable", failed="database")


async def test_the_request_log_counts_the_503_it_sent(client, member_token, caplog):
    caplog.set_level(logging.INFO, logger="mandate.request")
    async with database_gone():
        await client.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
    [line] = [r.fields for r in caplog.records if r.name == "mandate.request"]
    assert (line["status"], line["outcome"]) == (503, "SERVICE_UNAVAILABLE"), line


async def test_once_the_database_is_back_the_same_requests_succeed(client, member_token):
    headers = {"Authorization": f"Bearer {member_token}"}
    async with database_gone():
        assert_unavailable(await client.post("/graphql", json=READ, headers=headers))
    read = await client.post("/graphql", json=READ, headers=headers)
    assert read.status_code == 200 and read.json()["data"]["me"] == {"email": MEMBER}, read.text
    assert (await client.get("/healthz")).json() == {"status": "ok"}


# --- anything else unexpected: a masked JSON 500 -------------------------------------------------


def assert_masked(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"errors": [{"message": "Internal server error.",
                                           "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}


async def test_an_unexpected_error_while_resolving_the_caller_is_a_masked_json_500(client, monkeypatch, caplog):
    async def broken(authorization):
        raise RuntimeError("internal detail never shown")

    monkeypatch.setattr(callers, "resolve", broken)
    caplog.set_level(logging.INFO, logger="mandate.request")
    response = await client.post("/graphql", json=READ)
    assert_masked(response)
    [line] = [r.fields for r in caplog.records if r.name == "mandate.request"]
    assert (line["status"], line["outcome"]) == (500, "INTERNAL_SERVER_ERROR"), line
    assert any(r.name == "mandate.http" and r.exc_info for r in caplog.records)  # the trace is the log's


async def test_an_error_outside_every_handler_is_still_a_masked_json_500(app, monkeypatch):
    def broken(headers):
        raise RuntimeError("internal detail never shown")

    monkeypatch.setattr(observability, "_request_id", broken)  # the outermost middleware fails
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 40000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert_masked(await http.post("/graphql", json=READ))


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/healthz", 405)])
async def test_the_routers_refusals_are_json(client, method, path, status):
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


# --- /readyz: answers and takes writes ---------------------------------------------------------


async def test_readyz_and_healthz_answer_ok(client):
    for path in ("/healthz", "/readyz"):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (200, {"status": "ok"}), path


@asynccontextmanager
async def database_read_only(database_url: str):
    """The suite's database refuses writes on connections opened from now on (PostgreSQL:
    default_transaction_read_only on the database, as on a standby; SQLite: query_only)."""
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    name = urlsplit(database_url).path.lstrip("/")
    server = os.environ.get("MANDATE_TEST_POSTGRES_URL", "")
    if postgres:
        await on_server(server, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    else:
        client.pragmas["query_only"] = "ON"
    await client.close()
    try:
        yield
    finally:
        if postgres:
            await on_server(server, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        else:
            del client.pragmas["query_only"]
        await client.close()


async def test_readyz_is_503_on_a_read_only_database_while_healthz_stays_200(client, database_url):
    async with database_read_only(database_url):
        healthz, readyz = await client.get("/healthz"), await client.get("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert_unavailable(readyz, status="unavailable", failed="writes")


async def test_a_write_on_a_read_only_database_is_503_and_writes_nothing(monkeypatch, clinic, database_url):
    before = await Session.all().count()
    async with client_with_settings(monkeypatch) as http:
        async with database_read_only(database_url):
            login = await http.post("/graphql", json=LOGIN)
            read = await http.post("/graphql", json={"query": "{ __typename }"})
    assert_unavailable(login)
    assert read.status_code == 200
    assert await Session.all().count() == before


# --- a real PostgreSQL restarted under load, from two server processes -------------------------

POSTGRES_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
READERS, WRITERS = 2, 2          # per server process; each writer has an account of its own
RESTART_AFTER, LOAD_AFTER_BACK = 1.5, 3.0  # seconds of load before the restart, and after it
ACCOUNT_STATE = "query($a: ID!) { account(id: $a) { twoFactorEnforcement { enforcedHere } } }"


def _as_postgres(*command: str, timeout: float = 60) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class Cluster:
    """A PostgreSQL cluster of the test's own, in a temporary folder, on a free port."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/mandate"

    def pg_ctl(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", f"{POSTGRES_BINARIES[-1]}/pg_ctl", "-D", str(self.folder / "data"),
                "-l", str(self.folder / "postgres.log"), "-w", "-t", "30", *args]


@pytest.fixture(scope="module")
def cluster():
    if not POSTGRES_BINARIES:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("the cluster is started as the postgres user: needs root and runuser")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")
    folder = Path(tempfile.mkdtemp(prefix="mandate-restart-"))
    shutil.chown(folder, "postgres")
    cluster = Cluster(folder, free_port())
    options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
    try:
        _as_postgres(f"{POSTGRES_BINARIES[-1]}/initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                     "--no-sync", "-E", "UTF8")
        subprocess.run(cluster.pg_ctl("-o", options, "start"), check=True, timeout=60, stdout=subprocess.DEVNULL)
        _as_postgres(f"{POSTGRES_BINARIES[-1]}/createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                     "mandate")
        yield cluster
    finally:
        subprocess.run(cluster.pg_ctl("-m", "immediate", "stop"), timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Answer:
    kind: str          # read, state, write, healthz
    started: float
    ended: float
    status: int        # 0: no HTTP answer at all
    content_type: str
    body: object       # the JSON, or the text when it is not JSON
    headers: dict = field(default_factory=dict)


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[str, list[bool]] = field(default_factory=dict)  # account id -> values, in order
    attempted: dict[str, int] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, http: httpx.AsyncClient, kind: str, path: str, body: dict | None = None,
                   token: str | None = None) -> Answer:
        started = time.monotonic()
        try:
            if body is None:
                response = await http.get(path)
            else:
                response = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            answer = Answer(kind, started, time.monotonic(), 0, "", repr(error))
        else:
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
            answer = Answer(kind, started, time.monotonic(), response.status_code,
                            response.headers.get("content-type", ""), parsed, dict(response.headers))
        self.answers.append(answer)
        return answer

    async def reader(self, http: httpx.AsyncClient, token: str) -> None:
        while not self.stop.is_set():
            await self.send(http, "read", "/graphql", READ, token)

    async def healthz(self, http: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            await self.send(http, "healthz", "/healthz")
            await asyncio.sleep(0.02)

    async def writer(self, http: httpx.AsyncClient, token: str, account_id: str) -> None:
        """Switches its own account on and off. Each switch is a change: after a failure, whose
        write may or may not have been applied, it reads the state again before the next."""
        state: bool | None = None
        while not self.stop.is_set():
            if state is None:
                answer = await self.send(http, "state", "/graphql", {"query": ACCOUNT_STATE, "variables": {"a": account_id}},
                                         token)
                if answer.status == 200:
                    state = answer.body["data"]["account"]["twoFactorEnforcement"]["enforcedHere"]
                continue
            self.attempted[account_id] = self.attempted.get(account_id, 0) + 1
            answer = await self.send(http, "write", "/graphql",
                                     {"query": SET_ENFORCEMENT, "variables": {"a": account_id, "on": not state}}, token)
            if answer.status == 200 and not answer.body.get("errors"):
                state = not state
                self.acknowledged.setdefault(account_id, []).append(state)
            else:
                state = None


def _problems(answers: list[Answer]) -> list[str]:
    """Every answer that is not JSON, or not a clean 200 or a proper 503."""
    problems = []
    for a in answers:
        if a.status == 0 or a.content_type != "application/json" or not isinstance(a.body, dict):
            problems.append(f"{a.kind}: {a.status} {a.content_type} {a.body!r:.200}")
        elif a.status == 200:
            if a.body.get("errors"):
                problems.append(f"{a.kind}: 200 with errors {a.body}")
        elif a.status != 503 or a.headers.get("retry-after") != str(RETRY_AFTER) or [
            e.get("extensions") for e in a.body.get("errors", [])
        ] != [{"code": "SERVICE_UNAVAILABLE", "retryAfter": RETRY_AFTER}] or "data" in a.body:
            problems.append(f"{a.kind}: {a.status} {a.body}")
    return problems


async def _enrolled_manager(api: Api) -> str:
    """The manager's full session that passed the second factor (the servers keep real time)."""
    status, token = await api.login_token(MANAGER)
    assert status == "AUTHENTICATED", status
    secret = (await api.gql("mutation { enrolTotp { secret } }", token=token)).data["enrolTotp"]["secret"]
    confirmed = await api.gql("mutation($c: String!) { confirmTotp(code: $c) { token } }",
                              {"c": pyotp.TOTP(secret).now()}, token=token)
    assert not confirmed.errors, confirmed.body
    return confirmed.data["confirmTotp"]["token"] or token


def _switches_found(cluster: Cluster, account_ids: list[str]) -> dict[str, tuple[list[str], bool]]:
    """Per account: its enforcement audit events, oldest first, and its switch now (read with psql)."""
    found = {}
    for account_id in account_ids:
        number = int(base64.b64decode(account_id).decode().split(":")[1])
        sql = (f"SELECT string_agg(action, ',' ORDER BY id) FROM audit_events WHERE account_id = {number}"
               " AND action IN ('ENFORCEMENT_ON', 'ENFORCEMENT_OFF');"
               f"SELECT enforced FROM accounts WHERE id = {number};")
        out = subprocess.run(["runuser", "-u", "postgres", "--", f"{POSTGRES_BINARIES[-1]}/psql", "-h", "127.0.0.1",
                              "-p", str(cluster.port), "-U", "postgres", "-d", "mandate", "-tA", "-c", sql],
                             check=True, capture_output=True, text=True, timeout=30).stdout.split("\n")
        found[account_id] = ([a for a in out[0].split(",") if a], out[1].strip() == "t")
    return found


async def test_a_postgres_restart_under_load_answers_json_and_loses_no_acknowledged_write(database_url, cluster,
                                                                                          tmp_path):
    if backend_of(database_url) != BACKENDS[-1]:
        pytest.skip("one restart per run, under the last backend's parameter (it brings its own cluster)")
    mandate = Mandate(cluster.url, tmp_path)
    env = {**mandate.env(), "MANDATE_LOG_LEVEL": "WARNING"}
    accounts = [f"Writer {n}" for n in range(2 * WRITERS)]
    processes, logs, ports = [], [], []
    try:
        for n in range(2):  # one after the other: the first applies the migrations
            port, log = free_port(), tmp_path / f"serve-{n}.log"
            with log.open("w") as out:
                processes.append(subprocess.Popen([*COMMAND, "serve", "--port", str(port)], stdout=out,
                                                  stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
            wait_until_healthy(processes[-1], f"http://127.0.0.1:{port}", log)
            logs.append(log)
            ports.append(port)
        imported = mandate.import_file({
            "users": [{"email": MANAGER, "password": "password-123"}],
            "accounts": [{"name": name, "managers": [MANAGER]} for name in accounts],
        })
        assert imported.returncode == 0, imported.stderr

        load = Load()
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) for port in ports]
        try:
            token = await _enrolled_manager(Api(clients[0]))
            tops = (await Api(clients[0]).gql("{ accounts { id name } }", token=token)).data["accounts"]
            account_ids = [a["id"] for a in sorted(tops, key=lambda a: a["name"])]
            assert len(account_ids) == len(accounts)
            tasks = [asyncio.create_task(coroutine) for coroutine in [
                *(load.reader(clients[n % 2], token) for n in range(2 * READERS)),
                *(load.writer(clients[n % 2], token, account_id) for n, account_id in enumerate(account_ids)),
                *(load.healthz(client) for client in clients),
            ]]
            await asyncio.sleep(RESTART_AFTER)
            restart_began = time.monotonic()
            restart = await asyncio.create_subprocess_exec(*cluster.pg_ctl("-m", "fast", "restart"),
                                                           stdout=asyncio.subprocess.DEVNULL)
            assert await asyncio.wait_for(restart.wait(), 30) == 0
            back = time.monotonic()  # pg_ctl -w returns once the server accepts connections
            await asyncio.sleep(LOAD_AFTER_BACK)
            load.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            for client in clients:
                await client.aclose()
    finally:
        stop(*processes)

    answers = load.answers
    statuses = Counter(a.status for a in answers)
    failed = [a for a in answers if a.status != 200]
    after_back = [a for a in answers if a.started > back]
    found = _switches_found(cluster, account_ids)
    acknowledged = sum(len(values) for values in load.acknowledged.values())
    print(f"restart: {len(answers)} answers in {answers[-1].ended - answers[0].started:.1f} s "
          f"({dict(statuses)}), restart took {back - restart_began:.2f} s; "
          f"{len(after_back)} requests began after it, {sum(a.status != 200 for a in after_back)} failed; "
          f"{acknowledged} acknowledged switches, "
          f"{sum(len(events) for events, _ in found.values())} audit events found")

    assert _problems(answers) == []
    assert statuses[503] > 0, "the restart was never seen: no request met it"
    # The pool: every failure was in flight while the server was away; none began after it was back.
    assert [a for a in failed if a.ended < restart_began or a.started > back] == []
    assert len(after_back) >= 20 and all(a.status == 200 for a in after_back)
    for account_id, values in load.acknowledged.items():
        events, enforced_now = found[account_id]
        # Each acknowledged switch was a change, audited in its transaction: all are there, in
        # order, whatever else a failed request may have committed before it failed.
        assert len(events) >= len(values) and len(events) <= load.attempted[account_id], (events, values)
        assert events == ["ENFORCEMENT_ON", "ENFORCEMENT_OFF"] * (len(events) // 2) + ["ENFORCEMENT_ON"] * (len(events) % 2)
        assert enforced_now == values[-1]  # the last write of each writer came after the restart
    for log in logs:  # no unexpected error anywhere, masked or not (asyncpg's own warnings are fine)
        assert [line for line in log.read_text().splitlines() if _is_incident(line)] == []


def _is_incident(line: str) -> bool:
    if not line.startswith("{"):
        return "Traceback" in line
    return json.loads(line)["level"] in ("error", "critical")


async def test_a_failed_begin_gives_back_the_connection_it_took(client, monkeypatch):
    """During a restart BEGIN can fail on a connection just taken; tortoise kept such connections
    (asyncpg's pool has five; SQLite has one), and every later transaction waited for ever."""
    postgres = connections.get("default").capabilities.dialect == "postgres"

    async def broken_begin(self):
        if postgres:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        raise tortoise.exceptions.OperationalError(sqlite3.OperationalError("disk I/O error"))

    with monkeypatch.context() as patch:
        patch.setattr(TransactionWrapper if postgres else SqliteTransactionWrapper, "begin", broken_begin)
        for _ in range(8):  # more than the pool holds
            assert_unavailable(await client.get("/readyz"), status="unavailable", failed="writes")
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
