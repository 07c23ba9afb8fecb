"""The floor: the least a Python server can do to give Mandate's answers, for the bench to compare.

Starlette + asyncpg (PostgreSQL) or aiosqlite (SQLite) + orjson, hand-written SQL over Mandate's
own tables, nothing cached across requests. Two endpoints, each answering exactly what Mandate
answers for one document (same JSON as the GraphQL response, ids included):

- POST /me   = `{ me { id } }`: one statement finds the live full session behind the bearer
  token's SHA-256 (not revoked, not expired, its user enrolled in TOTP).
- POST /tree = run.py's TREE, body {"variables": {"id": "<an Account global id>"}}: that session
  statement, then the account's chain of ancestors with the caller's roles on it (readable
  when a role lies on it; enforced when a switch is on along it), its two levels below, and
  their sites: 4 statements. Each account's effective enforcement is its parent's or its own.

It serves what the bench asks and no more: a full session of a user with TOTP on and a role on
the account or above it (Mandate's other cases, such as site-only members or users bound to
2FA without it, are answered with an error here). Run: DATABASE_URL=... uvicorn floor:app
--app-dir bench.
"""

from __future__ import annotations

import base64
import hashlib
import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.backends.base.config_generator import expand_db_url

from mandate.config import reload_settings

SESSION = """
    SELECT s.user_id FROM sessions s JOIN totp_devices d ON d.user_id = s.user_id
    WHERE s.token_hash = ? AND s.kind = 'full' AND s.revoked_at IS NULL AND s.expires_at > ?
"""
CHAIN = """
    WITH RECURSIVE up(id, parent_id, name, enforced, depth) AS (
        SELECT id, parent_id, name, enforced, 0 FROM accounts WHERE id = ?
        UNION ALL
        SELECT a.id, a.parent_id, a.name, a.enforced, up.depth + 1 FROM accounts a JOIN up ON a.id = up.parent_id
    )
    SELECT up.id, up.name, up.enforced, m.role FROM up
    LEFT JOIN memberships m ON m.account_id = up.id AND m.user_id = ?
    ORDER BY up.depth
"""
TWO_LEVELS = """
    SELECT 1 AS depth, c.id, c.name, c.parent_id, c.enforced FROM accounts c WHERE c.parent_id = ?
    UNION ALL
    SELECT 2, g.id, g.name, g.parent_id, g.enforced FROM accounts g JOIN accounts c ON c.id = g.parent_id
    WHERE c.parent_id = ?
    ORDER BY 1, 3, 2
"""
SITES = {
    "postgres": "SELECT id, name, account_id FROM sites WHERE account_id = ANY(?::bigint[]) ORDER BY name, id",
    "sqlite": "SELECT id, name, account_id FROM sites WHERE account_id IN (SELECT value FROM json_each(?))"
              " ORDER BY name, id",
}


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def account_pk(global_id_: object) -> int | None:
    try:
        type_name, _, pk = base64.b64decode(str(global_id_), validate=True).decode().partition(":")
        return int(pk) if type_name == "Account" and pk.isdigit() else None
    except ValueError:
        return None


class Postgres:
    dialect = "postgres"

    def __init__(self, credentials: dict) -> None:
        self.credentials = credentials
        self.pool = None

    async def open(self) -> None:
        import asyncpg

        c = self.credentials
        self.pool = await asyncpg.create_pool(
            host=c.get("host"), port=c.get("port"), user=c.get("user"), password=c.get("password") or None,
            database=c.get("database"), min_size=10, max_size=10, reset=self.keep,
        )

    @staticmethod
    async def keep(conn) -> None:
        """No reset when a connection goes back to the pool: the floor leaves no session state
        (no locks, cursors, LISTEN or SET), so asyncpg's reset statement would be a wasted trip."""

    async def close(self) -> None:
        await self.pool.close()

    @staticmethod
    def sql(text: str) -> str:
        counter = iter(range(1, 100))
        return re.sub(r"\?", lambda _: f"${next(counter)}", text)

    def connection(self):
        return self.pool.acquire()


class Sqlite:
    dialect = "sqlite"

    def __init__(self, credentials: dict) -> None:
        self.path = credentials["file_path"]
        self.conn = None

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, isolation_level=None)

    async def close(self) -> None:
        await self.conn.close()

    @staticmethod
    def sql(text: str) -> str:
        return text

    @asynccontextmanager
    async def connection(self):
        yield self

    async def fetch(self, sql: str, *params):
        return await self.conn.execute_fetchall(sql, params)


def database_from_url(url: str):
    engine = expand_db_url(url)
    if engine["engine"] == "tortoise.backends.asyncpg":
        return Postgres(engine["credentials"])
    return Sqlite(engine["credentials"])


def refusal(code: str, message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}], "data": None}
    return Response(orjson.dumps(body), media_type="application/json")


def create_app(database_url: str | None = None) -> Starlette:
    database = database_from_url(database_url or reload_settings().database_url)
    postgres = database.dialect == "postgres"
    session_sql, chain_sql, levels_sql, sites_sql = (
        database.sql(SESSION), database.sql(CHAIN), database.sql(TWO_LEVELS), database.sql(SITES[database.dialect])
    )

    def token_hash(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            return None
        return hashlib.sha256(token.encode()).hexdigest()

    def now():
        moment = datetime.now(timezone.utc)
        return moment if postgres else moment.isoformat(" ")  # as tortoise stores it on SQLite

    async def caller(conn, request: Request) -> int | None:
        digest = token_hash(request)
        if digest is None:
            return None
        rows = await conn.fetch(session_sql, digest, now())
        return rows[0][0] if rows else None

    async def me(request: Request) -> Response:
        async with database.connection() as conn:
            user_id = await caller(conn, request)
        if user_id is None:
            return refusal("UNAUTHENTICATED", "No live full session of an enrolled user.")
        return Response(orjson.dumps({"data": {"me": {"id": global_id("User", user_id)}}}),
                        media_type="application/json")

    async def tree(request: Request) -> Response:
        try:
            account_id = account_pk(orjson.loads(await request.body())["variables"]["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            account_id = None
        if account_id is None:
            return refusal("BAD_USER_INPUT", "Send {\"variables\": {\"id\": <an Account id>}}.")
        async with database.connection() as conn:
            user_id = await caller(conn, request)
            if user_id is None:
                return refusal("UNAUTHENTICATED", "No live full session of an enrolled user.")
            chain = await conn.fetch(chain_sql, account_id, user_id)
            if not chain or all(row[3] is None for row in chain):
                return refusal("NOT_FOUND", "No such object, or you cannot see it.")
            accounts = await conn.fetch(levels_sql, account_id, account_id)
            ids = [row[1] for row in accounts]
            sites = await conn.fetch(sites_sql, ids if postgres else orjson.dumps(ids).decode())

        sites_of: dict[int, list[dict]] = {}
        for site_id, name, owner in sites:
            sites_of.setdefault(owner, []).append({"id": global_id("Site", site_id), "name": name})
        root_enforced = any(row[2] for row in chain)
        nodes: dict[int, dict] = {}
        enforced_at: dict[int, bool] = {account_id: root_enforced}
        children: list[dict] = []
        for depth, pk, name, parent_id, enforced in accounts:
            effective = bool(enforced) or enforced_at[parent_id]
            enforced_at[pk] = effective
            node = {"id": global_id("Account", pk), "name": name,
                    "twoFactorEnforcement": {"enforced": effective}, "sites": sites_of.get(pk, [])}
            if depth == 1:
                node["children"] = []
                children.append(node)
            else:
                nodes[parent_id]["children"].append(node)
            nodes[pk] = node
        root = {"id": global_id("Account", account_id), "name": chain[0][1],
                "twoFactorEnforcement": {"enforced": root_enforced}, "children": children}
        return Response(orjson.dumps({"data": {"account": root}}), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await database.open()
        try:
            yield
        finally:
            await database.close()

    return Starlette(
        routes=[Route("/me", me, methods=["POST"]), Route("/tree", tree, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )


app = create_app()
