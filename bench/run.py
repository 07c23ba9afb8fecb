"""The bench: Mandate against the hand-written floor and PostGraphile 4, on the same data, with wrk.

Run it as `bench/run [options]` (that script installs wrk and PostGraphile when missing, then
runs this file). Steps, in order:

1. a fresh database (PostgreSQL: DROP/CREATE the --database on --postgres-url; SQLite: a file in
   the output folder), filled by bench/generate.py; on PostgreSQL also PostGraphile's computed
   column accounts_effective_enforced(accounts), created in the bench database only;
2. the counting pass: each server started once more with its database traffic counted (a
   protocol-reading proxy on PostgreSQL, sqlite3's trace callback on SQLite), the manager logged
   in through Mandate's API (login, then verifyTwoFactor with pyotp), every answer checked (200,
   no `errors`, Mandate's tree data equal to the floor's, PostGraphile's tree the same accounts,
   sites and enforcement), then --count-requests requests per query: statements / requests;
3. the timed pass: each server started plainly, checked again, warmed up (--warmup seconds of
   wrk per query), then --rounds rounds of wrk (-t --threads -c --connections -d --duration),
   interleaved (each round runs every query on every server in turn);
4. the table: medians over the rounds, and Mandate's throughput divided by each peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
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
from dataclasses import dataclass
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
sys.path.insert(0, str(HERE))

from pgcount import StatementCounter  # noqa: E402

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
# the anchor run did (the effective state is not something PostGraphile infers).
_PG_ORDER = "(orderBy: [NAME_ASC, ID_ASC])"
PG_TREE = """query Tree($id: BigInt!) {
  accountById(id: $id) {
    id name ENFORCEMENT
    accountsByParentId%(o)s { nodes {
      id name ENFORCEMENT sitesByAccountId%(o)s { nodes { id name } }
      accountsByParentId%(o)s { nodes {
        id name ENFORCEMENT sitesByAccountId%(o)s { nodes { id name } } } }
    } }
  }
}""" % {"o": _PG_ORDER}
PG_TINY = "query Tiny($id: BigInt!) { accountById(id: $id) { id name } }"

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


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def pk_of(global_id_: str) -> int:
    return int(base64.b64decode(global_id_).decode().partition(":")[2])


# -- servers --------------------------------------------------------------------------------


@dataclass
class Target:
    """One query on one server: a row of the table."""

    label: str
    server: str
    query: str            # "tree" or "tiny"
    path: str
    body: dict
    authorised: bool      # sends the manager's bearer token
    check: Callable[[dict, "Expected"], None]


@dataclass
class Expected:
    floor_tree: dict | None = None
    floor_me: dict | None = None
    accounts: int = 0
    sites: int = 0


@dataclass
class Server:
    name: str
    label: str
    process: subprocess.Popen | None = None
    port: int = 0
    log: Path | None = None

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
        self.token: str | None = None
        self.state: dict = {}
        self.database_url = ""
        self.database_name = args.database
        self.started: list[Server] = []
        self.counts: dict[tuple[str, str], float | None] = {}
        self.results: dict[tuple[str, str], list[dict]] = {}
        self.expected = Expected()
        self.busy = 0.0

    # -- the database --

    def server_url(self, port: int | None = None, database: str | None = None) -> str:
        parts = urlsplit(self.args.postgres_url)
        netloc = parts.netloc
        if port is not None:  # the same server through the counting proxy
            user = parts.netloc.rpartition("@")[0]
            netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc, path=f"/{database or ''}"))

    async def admin(self, sql: str, database: str = "postgres") -> None:
        import asyncpg

        conn = await asyncpg.connect(self.server_url(database=database).replace("postgres://", "postgresql://", 1))
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
            self.database_url = self.server_url(database=name)
        a = self.args
        command = [
            str(BIN / "python"), str(HERE / "generate.py"), "--database-url", self.database_url,
            "--accounts", str(a.accounts), "--fanout", a.fanout, "--sites-per-account", str(a.sites_per_account),
            "--users", str(a.users), "--out", str(self.out / "generated.json"),
        ]
        say(f"Generating the data into {shown(self.database_url)} ...")
        if subprocess.run(command, env=self.env(), cwd=self.out).returncode != 0:
            raise SystemExit("bench: generating the data failed (see above)")
        self.state = json.loads((self.out / "generated.json").read_text())
        root = self.state["root_account_id"]
        levels = self.state["levels"]
        # The tree document reads the root, its children with sites and theirs.
        self.expected.accounts = sum(levels[:3])
        self.expected.sites = sum(levels[1:3]) * a.sites_per_account
        if not self.sqlite:
            await self.admin(EFFECTIVE_ENFORCEMENT_FUNCTION, self.database_name)
            await self.admin(EFFECTIVE_ENFORCEMENT_COMMENT, self.database_name)
        self.root = root

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "MANDATE_SECRET_KEY": self.secret_key, "PYTHONUNBUFFERED": "1", **extra}
        if self.args.mandate_source:  # ahead of the editable install on sys.path
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.args.mandate_source), env.get("PYTHONPATH")]))
        return env

    # -- starting and stopping servers --

    def servers(self) -> list[str]:
        names = self.args.servers
        return [n for n in names if n != "postgraphile"] if self.sqlite else names

    def command(self, name: str, port: int, database_url: str, counted: bool) -> tuple[list[str], dict[str, str]]:
        if name == "mandate":
            # Request lines off, as PostGraphile runs with --disable-query-log (the floor logs
            # nothing either); --mandate-env MANDATE_LOG_LEVEL=INFO measures them.
            env = self.env(DATABASE_URL=database_url, **{"MANDATE_ENV": "production", "MANDATE_LOG_LEVEL": "WARNING",
                                                          **self.args.mandate_env})
            if counted and self.sqlite:
                return [str(BIN / "python"), str(HERE / "sqlite_counted.py"), "mandate", "--port", str(port)], env
            return [str(BIN / "mandate"), "serve", "--port", str(port), "--workers", "1"], env
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
        raise AssertionError(name)

    async def start(self, name: str, database_url: str, counted: bool = False) -> Server:
        server = Server(name, LABELS[name], port=free_port())
        command, env = self.command(name, server.port, database_url, counted)
        server.log = self.out / f"{name}{'-counted' if counted else ''}.log"
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
                    if server.name == "postgraphile":
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
                process.kill()
                process.wait()
        if server in self.started:
            self.started.remove(server)

    async def stop_all(self) -> None:
        for server in list(self.started):
            await self.stop(server)

    # -- the manager's session --

    async def log_in(self, mandate: Server) -> None:
        email, password, secret = self.state["email"], self.state["password"], self.state["totp_secret"]
        async with httpx.AsyncClient(base_url=mandate.base, timeout=30) as client:
            async def call(query: str, variables: dict, token: str | None = None) -> dict:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
                body = response.json()
                if response.status_code != 200 or body.get("errors"):
                    raise SystemExit(f"bench: logging in through Mandate failed: {response.status_code} {body}")
                return body["data"]

            login = await call("mutation($e: String!, $p: String!) { login(email: $e, password: $p) { status token } }",
                               {"e": email, "p": password})
            if login["login"]["status"] != "TWO_FACTOR_REQUIRED":
                raise SystemExit(f"bench: the manager's login answered {login['login']['status']}")
            verified = await call("mutation($c: String!) { verifyTwoFactor(code: $c) { status token } }",
                                  {"c": pyotp.TOTP(secret).now()}, login["login"]["token"])
        self.token = verified["verifyTwoFactor"]["token"]
        path = self.out / "token"  # for wrk; a session of the bench's throwaway database
        path.unlink(missing_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(self.token)

    # -- what each server is asked --

    def targets(self, server: str) -> list[Target]:
        root = self.root
        queries = self.args.queries
        found: list[Target] = []
        if server == "mandate":
            found += [
                Target("Mandate", server, "tree", "/graphql", {"query": TREE, "variables": {"id": global_id("Account", root)}},
                       True, check_mandate_tree),
                Target("Mandate", server, "tiny", "/graphql", {"query": ME}, True, check_mandate_me),
            ]
        elif server == "floor":
            found += [
                Target("floor", server, "tree", "/tree", {"variables": {"id": global_id("Account", root)}}, True, check_floor_tree),
                Target("floor", server, "tiny", "/me", {}, True, check_floor_me),
            ]
        elif server == "postgraphile":
            variables = {"id": str(root)}
            found += [
                Target("PostGraphile 4", server, "tree", "/graphql",
                       {"query": PG_TREE.replace("ENFORCEMENT", "effectiveEnforced"), "variables": variables},
                       False, check_postgraphile_tree(effective=True)),
                Target("PostGraphile 4, own flag", server, "tree", "/graphql",
                       {"query": PG_TREE.replace("ENFORCEMENT", "enforced"), "variables": variables},
                       False, check_postgraphile_tree(effective=False)),
                Target("PostGraphile 4", server, "tiny", "/graphql", {"query": PG_TINY, "variables": variables},
                       False, check_postgraphile_tiny),
            ]
        return [t for t in found if t.query in queries]

    def headers(self, target: Target) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if target.authorised:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def ask(self, client: httpx.AsyncClient, server: Server, target: Target) -> dict:
        response = await client.post(server.base + target.path, content=json.dumps(target.body),
                                     headers=self.headers(target))
        try:
            body = response.json()
        except ValueError:
            body = {"unreadable": response.text[:200]}
        if response.status_code != 200 or "errors" in body or "data" not in body:
            raise SystemExit(f"bench: {target.label} {target.query} answered {response.status_code}: "
                             f"{json.dumps(body)[:500]}")
        return body

    # -- the counting pass --

    async def counting_pass(self) -> None:
        names = self.servers()
        n = self.args.count_requests
        say(f"Counting pass: {n} requests per query, SQL statements counted at the database.")
        answers: list[tuple[Target, dict]] = []
        for name in sorted(names, key=lambda name: name != "mandate"):  # Mandate first: it logs the manager in
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
                        answers.append((target, await self.count(client, server, target, counter, n)))
            finally:
                await self.stop(server)
                if counter is not None:
                    await counter.close()
        # The floor's answers are what the others are checked against.
        for target, body in sorted(answers, key=lambda pair: pair[0].server != "floor"):
            if target.server == "floor":
                setattr(self.expected, f"floor_{'tree' if target.query == 'tree' else 'me'}", body)
            target.check(body, self.expected)
        say("Every answer checked: 200, no errors"
            + (", Mandate's data equal to the floor's." if "floor" in names else "."))

    async def count(self, client, server: Server, target: Target, counter, n: int) -> dict:
        """The first answer (after warming up); statements per request over n requests, and the
        texts of the last request's, in the output folder."""
        for _ in range(3):  # warm: prepared statements, the documents' caches
            body = await self.ask(client, server, target)
        before = await self.statements(client, server, counter)
        for _ in range(n - 1):
            await self.ask(client, server, target)
        await self.statements(client, server, counter, clear=True)
        await self.ask(client, server, target)
        after = await self.statements(client, server, counter)
        self.counts[(target.label, target.query)] = (after[0] - before[0]) / n
        (self.out / f"statements-{slug(target.label)}-{target.query}.txt").write_text("\n".join(after[1]) + "\n")
        say(f"  {target.label:<26} {target.query:<5} {(after[0] - before[0]) / n:g} statements per request")
        return body

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

    async def timed_pass(self) -> None:
        a = self.args
        self.busy = await cpu_busy()
        if self.busy > 0.25:
            say(f"Warning: the machine is busy ({self.busy:.0%} of its CPU in use before timing, by something "
                "else): the figures will be low and noisy.")
        servers = [await self.start(name, self.database_url) for name in self.servers()]
        plan: list[tuple[Server, Target]] = [(s, t) for s in servers for t in self.targets(s.name)]
        async with httpx.AsyncClient(timeout=120) as client:
            for server, target in plan:  # the timed servers answer as the counted ones did
                target.check(await self.ask(client, server, target), self.expected)
        token_file = self.out / "token"
        for server, target in plan:
            self.body_file(target).write_text(json.dumps(target.body))
        say(f"Timed pass: warm-up {a.warmup} s per query, then {a.rounds} interleaved rounds of "
            f"wrk -t{a.threads} -c{a.connections} -d{a.duration}s per query and server.")
        if a.warmup > 0:
            for server, target in plan:
                await self.wrk(server, target, a.warmup, token_file)
        for round_ in range(1, a.rounds + 1):
            for query in ("tree", "tiny"):
                for server, target in plan:
                    if target.query != query:
                        continue
                    result = await self.wrk(server, target, a.duration, token_file)
                    self.results.setdefault((target.label, target.query), []).append(result)
                    say(f"  round {round_}: {target.label:<26} {query:<5} {result['rps']:>9,.1f} req/s  "
                        f"p50 {fmt_ms(result['p50'])}  p99 {fmt_ms(result['p99'])}{problems(result)}")
        await self.stop_all()

    def body_file(self, target: Target) -> Path:
        return self.out / f"body-{slug(target.label)}-{target.query}.json"

    async def wrk(self, server: Server, target: Target, seconds: int, token_file: Path) -> dict:
        a = self.args
        body_file = self.body_file(target)
        command = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{seconds}s", "--latency", "--timeout", "60s",
                   "-s", str(HERE / "post.lua"), server.base + target.path, "--", str(body_file)]
        if target.authorised:
            command.append(str(token_file))
        process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = (await process.communicate())[0].decode()
        with (self.out / "wrk.log").open("a") as log:
            log.write(f"$ {' '.join(command)}\n{output}\n")
        return parse_wrk(output)

    # -- the table --

    def table(self) -> str:
        rows = []
        mandate = {q: median(self.results.get(("Mandate", q), []), "rps") for q in ("tree", "tiny")}
        for (label, query), runs in self.results.items():
            rps = [r["rps"] for r in runs]
            med = statistics.median(rps)
            count = self.counts.get((label, query))
            ratio = "" if label == "Mandate" or not med or mandate[query] is None else f"{mandate[query] / med:.2f}"
            rows.append([
                label, query,
                f"{med:,.1f}" + (f" ({min(rps):,.1f}–{max(rps):,.1f})" if len(rps) > 1 else ""),
                fmt_ms(median(runs, "p50")), fmt_ms(median(runs, "p99")),
                "n/a" if count is None else f"{count:g}",
                ratio or "—", "".join(problems(r) for r in runs).strip(),
            ])
        rows.sort(key=lambda r: (r[1] != "tree", ORDER.index(r[0]) if r[0] in ORDER else 9))
        header = ["server", "query", "req/s (min–max)", "p50", "p99", "SQL/req", "Mandate ÷ this", "notes"]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip(),
                 "-|-".join("-" * w for w in widths)]
        lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join(lines)

    def describe(self) -> str:
        a, s = self.args, self.state
        levels = " + ".join(f"{n:,}" for n in s["levels"])
        backend = "SQLite" if self.sqlite else "PostgreSQL"
        return (f"{backend}; {s['accounts']:,} accounts ({levels}), {s['sites']:,} sites, {s['users']:,} users; "
                f"tree = {self.expected.accounts:,} accounts and {self.expected.sites:,} sites; "
                f"wrk -t{a.threads} -c{a.connections}, {a.rounds} rounds of {a.duration} s; {os.cpu_count()} cores, "
                f"{self.busy:.0%} busy before timing; {datetime.now():%Y-%m-%d %H:%M}")


LABELS = {"mandate": "Mandate", "floor": "floor", "postgraphile": "PostGraphile 4"}
ORDER = ["Mandate", "floor", "PostGraphile 4", "PostGraphile 4, own flag"]


async def cpu_busy(seconds: float = 1.0) -> float:
    """The share of all cores in use over a second (from /proc/stat; 0 where there is none)."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    try:
        total0, idle0 = sample()
        await asyncio.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return 0.0
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


# -- checks of the answers ------------------------------------------------------------------


class Mismatch(SystemExit):
    pass


def check_floor_tree(body: dict, expected: Expected) -> None:
    accounts, sites = count_tree(normalise_floor(body["data"]["account"]))
    if (accounts, sites) != (expected.accounts, expected.sites):
        raise Mismatch(f"bench: the floor's tree has {accounts} accounts and {sites} sites, "
                       f"not {expected.accounts} and {expected.sites}")


def check_floor_me(body: dict, expected: Expected) -> None:
    if not body["data"]["me"]["id"]:
        raise Mismatch("bench: the floor's me has no id")


def check_mandate_tree(body: dict, expected: Expected) -> None:
    if expected.floor_tree is None:
        return  # no floor in this run: checked by shape only
    if body["data"] != expected.floor_tree["data"]:
        mine, floor = normalise_floor(body["data"]["account"]), normalise_floor(expected.floor_tree["data"]["account"])
        raise Mismatch("bench: Mandate's tree differs from the floor's: " + first_difference(mine, floor))


def check_mandate_me(body: dict, expected: Expected) -> None:
    if expected.floor_me is not None and body["data"] != expected.floor_me["data"]:
        raise Mismatch(f"bench: Mandate's me {body['data']} differs from the floor's {expected.floor_me['data']}")


def check_postgraphile_tree(effective: bool) -> Callable[[dict, Expected], None]:
    def check(body: dict, expected: Expected) -> None:
        mine = normalise_postgraphile(body["data"]["accountById"], effective)
        floor = normalise_floor(expected.floor_tree["data"]["account"]) if expected.floor_tree else None
        if floor is not None and not effective:
            floor = strip_enforcement(floor)
        if floor is not None and mine != floor:
            raise Mismatch("bench: PostGraphile's tree differs from the floor's: " + first_difference(mine, floor))
        if count_tree(mine) != (expected.accounts, expected.sites):
            raise Mismatch(f"bench: PostGraphile's tree has {count_tree(mine)} accounts and sites")

    return check


def check_postgraphile_tiny(body: dict, expected: Expected) -> None:
    if not body["data"]["accountById"]:
        raise Mismatch("bench: PostGraphile's accountById answered null")


def normalise_floor(node: dict) -> tuple:
    """(id, name, enforced, sites, children) with numeric ids, from Mandate's or the floor's JSON."""
    return (pk_of(node["id"]), node["name"], node["twoFactorEnforcement"]["enforced"],
            tuple((pk_of(s["id"]), s["name"]) for s in node.get("sites", ())) if "sites" in node else None,
            tuple(normalise_floor(c) for c in node["children"]) if "children" in node else None)


def normalise_postgraphile(node: dict, effective: bool) -> tuple:
    sites = node.get("sitesByAccountId")
    children = node.get("accountsByParentId")
    return (int(node["id"]), node["name"], node["effectiveEnforced"] if effective else None,
            tuple((int(s["id"]), s["name"]) for s in sites["nodes"]) if sites else None,
            tuple(normalise_postgraphile(c, effective) for c in children["nodes"]) if children else None)


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
    }


def problems(result: dict) -> str:
    notes = []
    if result["non_2xx"]:
        notes.append(f"{result['non_2xx']} non-2xx")
    if result["socket_errors"]:
        notes.append(f"socket errors: {result['socket_errors']}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Mandate against the hand-written floor and PostGraphile 4 on the same data, "
        "driven by wrk; prints req/s, p50, p99, SQL statements per request and Mandate's ratio to each peer.")
    parser.add_argument("--sqlite", action="store_true", help="run on SQLite (Mandate and the floor only)")
    parser.add_argument("--duration", type=positive, default=8, help="seconds per timed wrk run (default: %(default)s)")
    parser.add_argument("--rounds", type=positive, default=2, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--connections", type=positive, default=10, help="wrk -c (default: %(default)s)")
    parser.add_argument("--threads", type=positive, default=1, help="wrk -t (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of wrk per query before timing (default: %(default)s)")
    parser.add_argument("--count-requests", type=positive, default=20,
                        help="requests per query in the counting pass (default: %(default)s)")
    parser.add_argument("--servers", default="mandate,floor,postgraphile", type=names_of(LABELS),
                        help="some of mandate, floor, postgraphile (default: %(default)s)")
    parser.add_argument("--queries", default="tree,tiny", type=names_of(("tree", "tiny")),
                        help="tree, tiny or both (default: %(default)s)")
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
    try:
        await bench.prepare_database()
        await bench.counting_pass()
        await bench.timed_pass()
    finally:
        await bench.stop_all()
    table = bench.table()
    text = f"{bench.describe()}\n\n{table}\n"
    (args.out / "results.txt").write_text(text)
    (args.out / "results.json").write_text(json.dumps({
        "setup": bench.describe(),
        "statements": {f"{k[0]} {k[1]}": v for k, v in bench.counts.items()},
        "runs": {f"{k[0]} {k[1]}": v for k, v in bench.results.items()},
    }, indent=2))
    say(f"\n{text}\nLogs and results: {args.out}")


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
        raise SystemExit("bench: Mandate must be among --servers (it logs the manager in)")
    if not args.sqlite and "postgraphile" in args.servers and not POSTGRAPHILE.exists():
        raise SystemExit("bench: PostGraphile is not installed in bench/.node (bench/run installs it with npm)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
