"""Generate a benchmark organisation into an empty Mandate database, fast.

    python bench/generate.py [--database-url URL] [--accounts 1101] [--fanout 100,10]
                             [--sites-per-account 3] [--users 5000] [--readers 41]
                             [--login-users 600] [--out FILE]

The database is migrated first (Mandate's own migrations), then filled with bulk inserts (COPY on
PostgreSQL, executemany in one transaction on SQLite): a tree of accounts built level by level
(--fanout children per account at each level, the last number repeating deeper down, stopping at
--accounts in all, the last level spread evenly over its parents), sites on every account, members
spread over the tree, and one manager of the root with TOTP on. Besides: --readers users with a
role on the root (every other one a manager, the rest members), who read the whole tree, and
--login-users members of accounts further down, all with TOTP on, for the bench's sessions and
logins. Their emails, the password and their TOTP secrets go to --out (mode 0600), for the bench
to log in with through the API.

Secrets are stored as Mandate stores them: TOTP secrets Fernet-encrypted under MANDATE_SECRET_KEY
(models/crypto.py), passwords argon2id (one hash, computed once, for every user).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyotp
from tortoise.backends.base.config_generator import expand_db_url

from mandate import db
from mandate.config import reload_settings
from mandate.models import audit
from mandate.models.crypto import encrypt_secret, hash_password

MANAGER_EMAIL = "manager@bench.example.org"
PASSWORD = "bench-password"
LEVEL_NAMES = ["Group", "Practice", "Clinic"]  # then "Unit" further down
SITE_MEMBER_EVERY = 10  # every tenth member is a site member instead of an account member
DEFAULT_OUT = Path(__file__).resolve().parent / ".out" / "generated.json"


@dataclass
class Organisation:
    """Rows ready to insert, ids from 1 (the database is empty)."""

    accounts: list[tuple] = field(default_factory=list)   # id, name, parent_id, enforced, changed_at, changed_by
    sites: list[tuple] = field(default_factory=list)      # id, name, account_id
    users: list[tuple] = field(default_factory=list)      # id, email, name, password_hash, totp_secret, created_at
    memberships: list[tuple] = field(default_factory=list)       # id, user_id, account_id, role
    site_memberships: list[tuple] = field(default_factory=list)  # id, user_id, site_id
    audit_events: list[tuple] = field(default_factory=list)      # id, at, action, account_id, actor_id
    levels: list[int] = field(default_factory=list)
    manager_secret: str = ""
    readers: list[dict] = field(default_factory=list)      # email, user_id, totp_secret, role
    login_users: list[dict] = field(default_factory=list)  # email, user_id, totp_secret


def level_name(depth: int) -> str:
    return LEVEL_NAMES[depth] if depth < len(LEVEL_NAMES) else "Unit"


def build(accounts: int, fanout: list[int], sites_per_account: int, users: int, enforce_every: int,
          readers: int = 0, login_users: int = 0) -> Organisation:
    org = Organisation()
    now = datetime.now(timezone.utc)
    manager_id = 1

    # The tree, level by level: (id, path) of the level being filled.
    org.accounts.append((1, "Bench Group", None, False, None, None))
    org.levels.append(1)
    level: list[tuple[int, str]] = [(1, "")]
    depth = 0
    while len(org.accounts) < accounts:
        per_parent = fanout[min(depth, len(fanout) - 1)]
        size = min(len(level) * per_parent, accounts - len(org.accounts))
        depth += 1
        below: list[tuple[int, str]] = []
        for index, (parent_id, parent_path) in enumerate(level):
            for n in range(1, size // len(level) + (1 if index < size % len(level) else 0) + 1):
                account_id = len(org.accounts) + 1
                path = f"{parent_path}.{n}" if parent_path else str(n)
                enforced = enforce_every > 0 and account_id % enforce_every == 0
                org.accounts.append((
                    account_id, f"{level_name(depth)} {path}", parent_id, enforced,
                    now if enforced else None, manager_id if enforced else None,
                ))
                below.append((account_id, path))
        org.levels.append(len(below))
        level = below

    for account_id, name, *_ in org.accounts:
        for n in range(1, sites_per_account + 1):
            org.sites.append((len(org.sites) + 1, f"Site {n} of {name}", account_id))
    for account_id, _, _, enforced, _, _ in org.accounts:
        if enforced:
            org.audit_events.append((len(org.audit_events) + 1, now, audit.ENFORCEMENT_ON, account_id, manager_id))

    # One argon2 hash for everyone (it is slow on purpose); a TOTP secret for every other member.
    password_hash = hash_password(PASSWORD)
    org.manager_secret = pyotp.random_base32(length=32)
    org.users.append((manager_id, MANAGER_EMAIL, "Bench Manager", password_hash,
                      encrypt_secret(org.manager_secret), now))
    org.memberships.append((1, manager_id, 1, "MANAGER"))
    for k in range(users):
        user_id = k + 2
        secret = encrypt_secret(pyotp.random_base32(length=32)) if k % 2 == 0 else None
        org.users.append((user_id, f"user{k + 1}@bench.example.org", f"Member {k + 1}", password_hash, secret, now))
        if org.sites and k % SITE_MEMBER_EVERY == SITE_MEMBER_EVERY - 1:
            org.site_memberships.append((len(org.site_memberships) + 1, user_id, k % len(org.sites) + 1))
        else:
            org.memberships.append((len(org.memberships) + 1, user_id, k % len(org.accounts) + 1, "MEMBER"))

    # The bench's own users, with secrets it knows: readers of the whole tree (a role on the
    # root), and members further down who only log in. Roles add no account or site: the tree
    # every reader reads is the same size whatever their number.
    deepest = [row[0] for row in org.accounts[-org.levels[-1]:]] if len(org.levels) > 1 else [1]
    for kind, count in (("reader", readers), ("login", login_users)):
        for k in range(count):
            user_id = len(org.users) + 1
            secret = pyotp.random_base32(length=32)
            email = f"{kind}{k + 1}@bench.example.org"
            org.users.append((user_id, email, f"Bench {kind} {k + 1}", password_hash, encrypt_secret(secret), now))
            if kind == "reader":
                role = "MANAGER" if k % 2 else "MEMBER"
                org.memberships.append((len(org.memberships) + 1, user_id, 1, role))
                org.readers.append({"email": email, "user_id": user_id, "totp_secret": secret, "role": role})
            else:
                org.memberships.append((len(org.memberships) + 1, user_id, deepest[k % len(deepest)], "MEMBER"))
                org.login_users.append({"email": email, "user_id": user_id, "totp_secret": secret})
    return org


# Column lists shared by both databases, in the order of insertion.
COLUMNS = {
    "users": ("id", "email", "name", "password_hash", "created_at"),
    "totp_devices": ("id", "user_id", "secret", "last_step", "confirmed_at", "created_at"),
    "accounts": (
        "id", "name", "parent_id", "enforced", "enforcement_changed_at", "enforcement_changed_by_id", "grace_period_hours",
    ),
    "sites": ("id", "name", "account_id"),
    "memberships": ("id", "user_id", "account_id", "role"),
    "site_memberships": ("id", "user_id", "site_id"),
    "audit_events": ("id", "at", "action", "account_id", "actor_id"),
}


def table_rows(org: Organisation) -> dict[str, list[tuple]]:
    return {
        "users": [(user_id, email, name, password_hash, at) for user_id, email, name, password_hash, _, at in org.users],
        "totp_devices": [
            (n, user_id, secret, 0, at, at)
            for n, (user_id, _, _, _, secret, at) in enumerate((u for u in org.users if u[4] is not None), start=1)
        ],
        "accounts": [(*account, 0) for account in org.accounts],  # no grace period
        "sites": org.sites,
        "memberships": org.memberships,
        "site_memberships": org.site_memberships,
        "audit_events": org.audit_events,
    }


class NotEmpty(Exception):
    pass


async def insert_postgres(credentials: dict, org: Organisation) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=credentials.get("host"), port=credentials.get("port"), user=credentials.get("user"),
        password=credentials.get("password") or None, database=credentials.get("database"),
    )
    try:
        if await conn.fetchval("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM users)"):
            raise NotEmpty
        async with conn.transaction():
            for table, rows in table_rows(org).items():
                await conn.copy_records_to_table(table, records=rows, columns=list(COLUMNS[table]))
            for table in COLUMNS:  # explicit ids: move the sequences past them
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _sqlite_value(value):
    # As tortoise stores them on SQLite: datetimes as isoformat(" ") text, booleans as 0/1.
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, bool):
        return int(value)
    return value


def insert_sqlite(path: str, org: Organisation) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if conn.execute("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM users)").fetchone()[0]:
            raise NotEmpty
        conn.execute("BEGIN")
        for table, rows in table_rows(org).items():
            columns = COLUMNS[table]
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                ([_sqlite_value(v) for v in row] for row in rows),
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def parse_fanout(value: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 100,10") from None
    if not numbers or any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError("every number must be 1 or more")
    return numbers


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def not_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="sqlite://PATH or postgres://USER@HOST:PORT/NAME "
                        "(default: DATABASE_URL, as Mandate reads it)")
    parser.add_argument("--accounts", type=positive, default=1101, help="accounts in all (default: %(default)s)")
    parser.add_argument("--fanout", type=parse_fanout, default=[100, 10],
                        help="children per account at each level; the last repeats (default: 100,10)")
    parser.add_argument("--sites-per-account", type=not_negative, default=3, help="(default: %(default)s)")
    parser.add_argument("--users", type=not_negative, default=5000,
                        help="members spread over the tree, besides the root's manager (default: %(default)s)")
    parser.add_argument("--readers", type=not_negative, default=41,
                        help="users with a role on the root and TOTP on, who read the whole tree "
                        "(default: %(default)s)")
    parser.add_argument("--login-users", type=not_negative, default=600,
                        help="members of the deepest accounts with TOTP on, for logins (default: %(default)s)")
    parser.add_argument("--enforce-every", type=not_negative, default=7,
                        help="enforcement switched on at every account whose id is a multiple of this; "
                        "0 for none (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the logins of the manager, readers and login users go, as JSON (default: bench/.out/generated.json)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    url = args.database_url or reload_settings().database_url
    try:
        engine = expand_db_url(url)
    except Exception:  # noqa: BLE001 - tortoise raises several kinds for a bad URL
        sys.exit(f"generate: cannot use the database URL {url!r}")
    started = time.perf_counter()
    asyncio.run(db.migrate(url))
    org = build(args.accounts, args.fanout, args.sites_per_account, args.users, args.enforce_every,
                args.readers, args.login_users)
    try:
        if engine["engine"] == "tortoise.backends.asyncpg":
            asyncio.run(insert_postgres(engine["credentials"], org))
        else:
            insert_sqlite(engine["credentials"]["file_path"], org)
    except NotEmpty:
        sys.exit("generate: the database already holds accounts or users: use a new database")
    seconds = time.perf_counter() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "email": MANAGER_EMAIL,
        "password": PASSWORD,
        "totp_secret": org.manager_secret,
        "root_account_id": 1,
        "levels": org.levels,
        "accounts": len(org.accounts),
        "sites": len(org.sites),
        "users": len(org.users),
        "memberships": len(org.memberships),
        "site_memberships": len(org.site_memberships),
        "enforced_accounts": sum(1 for row in org.accounts if row[3]),
        "manager_user_id": 1,
        "readers": org.readers,
        "login_users": org.login_users,
    }
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(summary, out, indent=2)
    levels = " + ".join(f"{n:,}" for n in org.levels)
    print(
        f"Generated {len(org.accounts):,} accounts ({levels}), {len(org.sites):,} sites, "
        f"{len(org.users):,} users ({len(org.memberships):,} account roles, "
        f"{len(org.site_memberships):,} site members), {summary['enforced_accounts']:,} accounts enforced, "
        f"in {seconds:.1f} s. The root's manager {MANAGER_EMAIL}, {len(org.readers):,} readers of the root and "
        f"{len(org.login_users):,} login users (TOTP on) are in {args.out}."
    )


if __name__ == "__main__":
    main()
