"""The `mandate` command: serve, migrate, import, demo, and the operator's commands (users,
accounts, roles, reports, the audit log, key rotation).

Expected failures (a bad file, a refused demo, a database that does not answer) end with a
one-line message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TextIO
from urllib.parse import urlsplit, urlunsplit

from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException

from mandate import db, logs
from mandate.config import ENVIRONMENTS, LOG_LEVELS, MissingSecretKey, Settings, get_settings, reload_settings
from mandate.demo import DEMO_LOGINS, DEMO_PASSWORD, DatabaseNotEmpty, demo_is_loaded, load_demo
from mandate.models import cleanup, clock, operations
from mandate.models.errors import MandateError
from mandate.models.importing import ImportFileError, import_data
from mandate.models.tables import Role

EXIT_FAILED = 1    # the database did not answer, or another runtime failure
EXIT_REFUSED = 2   # a bad file or a refused command: nothing was written (argparse uses 2 too)


class CommandFailed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, sqlite3.Error, BaseORMException]
    try:
        import asyncpg
    except ImportError:
        pass
    else:
        errors += [asyncpg.PostgresError, asyncpg.InterfaceError]
    return tuple(errors)


def shown_url(url: str) -> str:
    """The database URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# -- migrations ------------------------------------------------------------------------------


SUPPORTED_ENGINES = {"tortoise.backends.sqlite", "tortoise.backends.asyncpg"}


def check_database_url(url: str) -> None:
    """Refuse a URL Mandate cannot use, and open a SQLite file once with the standard library:
    for a path that cannot be opened, tortoise's migrator swallows the first error and then waits
    forever on a lock it left held, and aiosqlite reports from its thread after the loop closed."""
    try:
        engine = expand_db_url(url)
    except BaseORMException:
        engine = {"engine": None}
    if engine["engine"] not in SUPPORTED_ENGINES:
        raise CommandFailed(
            f"DATABASE_URL must be sqlite://PATH or postgres://USER@HOST/NAME, not {shown_url(url)!r}",
            EXIT_REFUSED,
        )
    if engine["engine"] == "tortoise.backends.sqlite":
        sqlite3.connect(engine["credentials"]["file_path"]).close()


async def apply_migrations(url: str) -> list[str]:
    """db.migrate, noting the name of each migration applied."""
    applied: list[str] = []
    check_database_url(url)

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    await db.migrate(url, progress=progress)
    return applied


def _report_migrations(applied: list[str], *, quiet_when_none: bool, out: TextIO | None = None) -> None:
    for name in applied:
        print(f"Applied migration {name}", file=out)
    if not applied and not quiet_when_none:
        print("No migrations to apply: the database is up to date.", file=out)


# -- commands --------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, url: str) -> None:
    _report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=False)


def check_serving(settings: Settings) -> None:
    """What production asks of `serve`, before anything is touched."""
    if settings.log_level not in LOG_LEVELS:
        raise CommandFailed(f"MANDATE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}",
                            EXIT_REFUSED)
    if settings.trusted_proxies.invalid:
        raise CommandFailed(
            "MANDATE_TRUSTED_PROXIES must be comma-separated IP addresses or networks (CIDR, e.g. "
            f"10.0.0.0/8), not {', '.join(map(repr, settings.trusted_proxies.invalid))}", EXIT_REFUSED,
        )
    if settings.env != "production":
        return
    if not settings.secret_key_set:
        raise CommandFailed(
            "MANDATE_ENV=production needs MANDATE_SECRET_KEY (the key that encrypts TOTP secrets at rest): "
            "not starting", EXIT_REFUSED,
        )
    if urlsplit(settings.database_url).scheme == "sqlite":
        print("mandate serve: warning: MANDATE_ENV=production on SQLite: one machine, one file; "
              "use PostgreSQL (DATABASE_URL=postgres://...) for production", file=sys.stderr)


def cmd_serve(args: argparse.Namespace, url: str) -> None:
    import uvicorn

    settings = get_settings()
    check_serving(settings)
    _report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=True)
    sys.stdout.flush()  # before the server's own log lines
    shared_metrics = None
    if settings.metrics and args.workers > 1 and not settings.metrics_folder:
        # prometheus-client's multi-process mode: each worker counts into this folder (it reads
        # PROMETHEUS_MULTIPROC_DIR when it starts) and a scrape adds them all up.
        shared_metrics = tempfile.mkdtemp(prefix="mandate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared_metrics
    try:
        # The import string and factory let --workers start the app afresh in each process;
        # uvicorn picks uvloop and httptools by itself when they are installed. Its access log
        # is off: our JSON request lines (gql/observability.py) replace it. Its proxy headers are
        # off, since by default it believes X-Forwarded-For from 127.0.0.1: the app resolves the
        # client address itself, under MANDATE_TRUSTED_PROXIES (gql/proxies.py).
        uvicorn.run(
            "mandate.gql.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
            access_log=False, log_config=logs.log_config(settings.log_level), proxy_headers=False,
        )
    finally:
        if shared_metrics:
            shutil.rmtree(shared_metrics, ignore_errors=True)


def _read_import_file(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandFailed(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}", EXIT_REFUSED)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandFailed(
            f"{_source_name(source)} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            EXIT_REFUSED,
        )


def _source_name(source: str) -> str:
    return "standard input" if source == "-" else source


async def _import(url: str, data: Any) -> tuple[list[str], Any]:
    applied = await apply_migrations(url)
    async with db.connected(url):
        return applied, await import_data(data)


def cmd_import(args: argparse.Namespace, url: str) -> None:
    data = _read_import_file(args.file)
    try:
        applied, summary = asyncio.run(_import(url, data))
    except ImportFileError as exc:
        raise CommandFailed(f"{_source_name(args.file)}: {exc} (nothing was imported)", EXIT_REFUSED)
    _report_migrations(applied, quiet_when_none=True)
    print(f"Imported {_source_name(args.file)}: {summary}")
    for warning in summary.warnings:
        print(f"warning: {warning}")


async def _demo(url: str, if_empty: bool) -> tuple[list[str], Any, bool]:
    """(migrations applied, the summary or None when nothing was loaded, whether the demo is there)."""
    applied = await apply_migrations(url)
    async with db.connected(url):
        try:
            return applied, await load_demo(), True
        except DatabaseNotEmpty as exc:
            if if_empty:
                return applied, None, await demo_is_loaded()
            raise CommandFailed(f"{exc} (use a new DATABASE_URL)", EXIT_REFUSED)


def cmd_demo(args: argparse.Namespace, url: str) -> None:
    applied, summary, demo_there = asyncio.run(_demo(url, args.if_empty))
    _report_migrations(applied, quiet_when_none=True)
    if summary is not None:
        print(f"Loaded the demo organisation Northwind Health ({summary}).")
    elif demo_there:
        print("The demo organisation Northwind Health is already loaded.")
    else:
        print("The database already holds data: the demo organisation was not loaded.")
        return
    print(f"Every demo login has the password {DEMO_PASSWORD!r}. In a new demo nobody has 2FA and it is")
    print("enforced nowhere: log in as the group manager, set up 2FA, then switch enforcement on.\n")
    rows = [("email", "role", "sees")] + [(d.email, d.role, d.sees) for d in DEMO_LOGINS]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for email, role, sees in rows:
        print(f"  {email:<{widths[0]}}  {role:<{widths[1]}}  {sees}")


# -- the operator's commands -------------------------------------------------------------------


def _run(url: str, operation: Callable[[], Awaitable[Any]]) -> Any:
    """Migrate if needed (noted on stderr, so that stdout holds only the command's answer), then
    run one operation against the database."""

    async def run() -> Any:
        _report_migrations(await apply_migrations(url), quiet_when_none=True, out=sys.stderr)
        async with db.connected(url):
            return await operation()

    return asyncio.run(run())


def _api_id(type_name: str, pk: int) -> str:
    from mandate.gql.ids import to_global_id

    return to_global_id(type_name, pk)


def _api_pk(value: str, type_name: str) -> int | None:
    """The number behind a database id or an API id of this type; None when it is neither."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    from mandate.gql.ids import from_global_id

    try:
        found, pk = from_global_id(value)
    except MandateError:
        return None
    return pk if found == type_name else None


def account_id(value: str) -> int:
    """ACCOUNT: a number (the database id) or the API's id (as `accounts { id }` gives it)."""
    pk = _api_pk(value, "Account")
    if pk is None:
        raise CommandFailed(f"{value!r} is not an account id: give its number or its API id", EXIT_REFUSED)
    return pk


def user_reference(value: str) -> int | str:
    """USER: an email, a number (the database id) or the API's id."""
    if "@" in value:
        return value
    pk = _api_pk(value, "User")
    if pk is None:
        raise CommandFailed(f"{value!r} is not a user: give an email, a number or an API id", EXIT_REFUSED)
    return pk


def _read_password(args: argparse.Namespace) -> str | None:
    """From standard input or a prompt, never from the command line (where `ps` shows it)."""
    if args.no_password:
        return None
    if args.password_stdin:
        try:
            password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            raise CommandFailed("--password-stdin: standard input is not UTF-8 text", EXIT_REFUSED) from None
        if not password:
            raise CommandFailed("--password-stdin: standard input holds no password", EXIT_REFUSED)
        return password
    if not sys.stdin.isatty():
        raise CommandFailed("give the password on standard input with --password-stdin, or --no-password",
                            EXIT_REFUSED)
    password = getpass.getpass("Password: ")
    if getpass.getpass("The same again: ") != password:
        raise CommandFailed("the two passwords differ: nothing was written", EXIT_REFUSED)
    return password


def cmd_user_create(args: argparse.Namespace, url: str) -> None:
    password = _read_password(args)
    user = _run(url, lambda: operations.create_user(args.email, args.name, password))
    note = "" if password is not None else "; no password: they cannot log in until given one"
    print(f"Created user {user.email} (id {user.id}, API id {_api_id('User', user.id)}){note}.")


def cmd_user_disable(args: argparse.Namespace, url: str) -> None:
    reference = user_reference(args.user)

    async def disable() -> tuple[Any, int]:
        user = await operations.find_user(reference)
        return user, await operations.disable_user(user)

    user, ended = _run(url, disable)
    print(f"Disabled {user.email}: password removed, {ended} live session(s) ended.")


def cmd_account_create(args: argparse.Namespace, url: str) -> None:
    parent = account_id(args.parent) if args.parent is not None else None
    account = _run(url, lambda: operations.create_account(args.name, parent))
    where = f"under account {parent}" if parent is not None else "at the top"
    print(f"Created account {account.name!r} (id {account.id}, API id {_api_id('Account', account.id)}) {where}.")


def cmd_account_move(args: argparse.Namespace, url: str) -> None:
    moved, parent = account_id(args.account), None if args.top else account_id(args.parent)
    where = f"under account {parent}" if parent is not None else "at the top"
    if _run(url, lambda: operations.move_account(moved, parent)):
        print(f"Moved account {moved} {where}.")
    else:
        print(f"Account {moved} is {where} already: nothing to do.")


def cmd_member_add(args: argparse.Namespace, url: str) -> None:
    account, reference, role = account_id(args.account), user_reference(args.user), Role(args.role.upper())

    async def add() -> tuple[Any, str]:
        user = await operations.find_user(reference)
        return user, await operations.add_member(account, user, role)

    user, done = _run(url, add)
    if done == "unchanged":
        print(f"{user.email} is {role.value} of account {account} already: nothing to do.")
    else:
        print(f"{user.email} is now {role.value} of account {account} (role {done}).")


def cmd_member_remove(args: argparse.Namespace, url: str) -> None:
    account, reference = account_id(args.account), user_reference(args.user)

    async def remove() -> tuple[Any, Role]:
        user = await operations.find_user(reference)
        return user, await operations.remove_member(account, user)

    user, role = _run(url, remove)
    print(f"Removed the {role.value} role of {user.email} on account {account}.")


def _compliance_json(report: operations.ComplianceReport) -> dict:
    account, source = report.account, report.source
    return {
        "account": {
            "id": account.id, "apiId": _api_id("Account", account.id), "name": account.name,
            "enforced": source is not None, "enforcedHere": account.enforced,
            "source": {"id": source.id, "name": source.name} if source is not None else None,
        },
        "totalUsers": len(report.users),
        "enrolledUsers": len(report.users) - len(report.pending),
        "pendingUsers": [{"id": u.id, "email": u.email, "name": u.name} for u in report.pending],
        "users": [{"id": u.id, "email": u.email, "name": u.name, "twoFactorEnabled": u.enrolled}
                  for u in report.users],
    }


def cmd_report_compliance(args: argparse.Namespace, url: str) -> None:
    account = account_id(args.account)
    report = _run(url, lambda: operations.compliance_report(account))
    if args.json:
        print(json.dumps(_compliance_json(report), ensure_ascii=False, indent=2))
        return
    row, source = report.account, report.source
    if source is None:
        state = "not enforced"
    elif source.id == row.id:
        state = "enforced here"
    else:
        state = f"enforced from account {source.id} ({source.name})"
    enrolled = len(report.users) - len(report.pending)
    print(f"Account {row.id} ({row.name}): {state}.")
    print(f"{len(report.users)} users bound, {enrolled} with 2FA, {len(report.pending)} still to set it up.")
    if report.users:
        rows = [("EMAIL", "NAME", "2FA")] + [(u.email, u.name, "yes" if u.enrolled else "pending")
                                            for u in report.users]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        print()
        for email, name, two_factor in rows:
            print(f"{email:<{widths[0]}}  {name:<{widths[1]}}  {two_factor}")


_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_time(value: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or a duration back from now: 90m, 24h, 7d."""
    if match := _DURATION.fullmatch(value.strip()):
        return clock.now() - timedelta(seconds=int(match[1]) * _SECONDS[match[2]])
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandFailed(f"--since {value!r}: give a date or time (2026-05-01, 2026-05-01T08:00Z) "
                            "or a duration back from now (90m, 24h, 7d)", EXIT_REFUSED) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def cmd_audit_export(args: argparse.Namespace, url: str) -> None:
    since = since_time(args.since)

    async def export() -> int:
        count = 0
        async for event in operations.audit_events_since(since):
            sys.stdout.write(json.dumps({
                "id": event["id"], "at": event["at"].astimezone(timezone.utc).isoformat(),
                "action": event["action"],
                "actorId": event["actor_id"], "actorEmail": event["actor__email"],
                "subjectId": event["subject_id"], "subjectEmail": event["subject__email"],
                "accountId": event["account_id"], "accountName": event["account__name"],
                "clientAddress": event["client_address"],
            }, ensure_ascii=False) + "\n")
            count += 1
        return count

    count = _run(url, export)
    print(f"mandate audit export: {count} event(s) since {since.isoformat()}", file=sys.stderr)


def cmd_rotate_key(args: argparse.Namespace, url: str) -> None:
    try:
        rotation = _run(url, operations.reencrypt_totp_secrets)
    except operations.SecretsUnreadable as exc:
        shown = ", ".join(map(str, exc.user_ids[:10])) + (", ..." if len(exc.user_ids) > 10 else "")
        raise CommandFailed(
            f"the TOTP secrets of {len(exc.user_ids)} user(s) (ids {shown}) decrypt under no key of "
            "MANDATE_SECRET_KEY: add the key they were encrypted under (nothing was changed)", EXIT_REFUSED,
        ) from None
    print(f"Re-encrypted {rotation.secrets} TOTP secret(s) of {rotation.users} user(s) under the first key "
          "of MANDATE_SECRET_KEY.")
    if rotation.skipped:
        print(f"{rotation.skipped} user(s) changed their 2FA meanwhile and were left as the server wrote them: "
              "run rotate-key again once every server has the new key first.")


def cmd_cleanup(args: argparse.Namespace, url: str) -> None:
    print(f"Deleted {_run(url, cleanup.clean_up)}.")


# -- the parser ------------------------------------------------------------------------------


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mandate",
        description="Mandate: two-factor enforcement for account trees, served as a GraphQL API.",
        epilog="Settings come from the environment: DATABASE_URL (default sqlite://mandate.sqlite3), "
        "MANDATE_SECRET_KEY (the keys that encrypt TOTP secrets at rest), MANDATE_ENV and more: "
        "the README's Settings lists them all. ACCOUNT is an account's number or its API id; USER "
        "is an email, a number or an API id.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate the database if needed and serve the API",
                                description="Apply pending migrations, then serve the API with uvicorn.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--workers", type=_positive, default=1,
                       help="worker processes (default: %(default)s)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply the database migrations",
                                  description="Apply pending database migrations and list them.")
    migrate.set_defaults(run=cmd_migrate)

    importer = commands.add_parser(
        "import", help="add users, accounts, sites and roles from a JSON file",
        description="Merge users, accounts, sites and roles from a JSON file in the import format: "
        "never a deletion; accounts are matched by their path of names, users by email, and an "
        "existing user keeps their password unless the file gives one. A bad file writes nothing.",
    )
    importer.add_argument("file", metavar="FILE.json", help="the file to import, or - for standard input")
    importer.set_defaults(run=cmd_import)

    demo = commands.add_parser("demo", help="load a small demo organisation into an empty database",
                               description="Load the demo healthcare group Northwind Health into an "
                               "empty database and print its logins.")
    demo.add_argument("--if-empty", action="store_true",
                      help="when the database already holds data, say so and succeed instead of failing")
    demo.set_defaults(run=cmd_demo)

    _add_operator_commands(commands)
    return parser


def _add_operator_commands(commands) -> None:
    def group(name: str, help: str):
        parser = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    account_help = "an account's number, or its API id (as `accounts { id }` gives it)"
    user_help = "an email, a user's number, or their API id"

    users = group("user", "create or disable users")
    create = users.add_parser(
        "create", help="create a user",
        description="Create a user. The password is read from standard input (--password-stdin) or a "
        "prompt, never from the command line, where other users of the machine could see it.")
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--name", required=True, help="the name shown to managers")
    given = create.add_mutually_exclusive_group()
    given.add_argument("--password-stdin", action="store_true", help="read the password from standard input's first line")
    given.add_argument("--no-password", action="store_true", help="create the user without a password (they cannot log in yet)")
    create.set_defaults(run=cmd_user_create)
    disable = users.add_parser(
        "disable", help="stop a user from logging in",
        description="Remove the user's password and end every session of theirs now. Their roles and "
        "2FA stay: `mandate import` with a password for them lets them in again.")
    disable.add_argument("user", metavar="USER", help=user_help)
    disable.set_defaults(run=cmd_user_disable)

    accounts = group("account", "create or move accounts")
    create = accounts.add_parser("create", help="create an account",
                                 description="Create an account, at the top or under a parent.")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--parent", metavar="ACCOUNT", help=f"the parent: {account_help} (default: at the top)")
    create.set_defaults(run=cmd_account_create)
    move = accounts.add_parser(
        "move", help="move an account (with its subtree and sites)",
        description="Move an account, with its subtree and sites, under another account or to the top. "
        "Enforcement and roles follow the new tree from the next request.")
    move.add_argument("account", metavar="ACCOUNT", help=account_help)
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--parent", metavar="ACCOUNT", help="the new parent")
    where.add_argument("--top", action="store_true", help="make it the top of a tree of its own")
    move.set_defaults(run=cmd_account_move)

    members = group("member", "give or take away roles on accounts")
    add = members.add_parser(
        "add", help="give a user a role on an account (or change it)",
        description="Give a user a role on an account, or change the role they hold there. A role "
        "reaches the account's whole subtree.")
    add.add_argument("account", metavar="ACCOUNT", help=account_help)
    add.add_argument("user", metavar="USER", help=user_help)
    add.add_argument("--role", type=str.upper, choices=[r.value for r in Role], default=Role.MEMBER.value,
                     help="(default: %(default)s)")
    add.set_defaults(run=cmd_member_add)
    remove = members.add_parser("remove", help="take away a user's role on an account",
                                description="Take away the role a user holds on this account.")
    remove.add_argument("account", metavar="ACCOUNT", help=account_help)
    remove.add_argument("user", metavar="USER", help=user_help)
    remove.set_defaults(run=cmd_member_remove)

    reports = group("report", "reports on accounts")
    compliance = reports.add_parser(
        "compliance", help="who an account's enforcement binds, and who has 2FA",
        description="The users an account's enforcement binds (a role on it, an ancestor or a descendant, "
        "and the site members of its subtree's sites), with their 2FA: the API's twoFactorCompliance.")
    compliance.add_argument("account", metavar="ACCOUNT", help=account_help)
    compliance.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    compliance.set_defaults(run=cmd_report_compliance)

    audit = group("audit", "the audit log")
    export = audit.add_parser("export", help="print audit events as JSON lines, oldest first",
                              description="Print every audit event since a time, oldest first, one JSON "
                              "object a line (ids, emails, account names; never a secret).")
    export.add_argument("--since", required=True, metavar="WHEN",
                        help="an ISO 8601 date or time, UTC unless it says otherwise (2026-05-01, "
                        "2026-05-01T08:00+01:00), or a duration back from now (90m, 24h, 7d)")
    export.set_defaults(run=cmd_audit_export)

    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every stored TOTP secret under the first key",
        description="Re-encrypt every stored TOTP secret, confirmed or pending, under the first key of "
        "MANDATE_SECRET_KEY (a comma-separated list: the first encrypts, all decrypt), in one "
        "transaction. Refuses, changing nothing, if any secret decrypts under none of the keys.")
    rotate.set_defaults(run=cmd_rotate_key)

    tidy = commands.add_parser(
        "cleanup", help="delete dead sessions and stale throttle rows",
        description=f"Delete sessions expired or revoked over {cleanup.DEAD_SESSION_RETENTION.days} days ago and "
        "throttle rows whose failures no longer count, and say how many. `mandate serve` does the same every "
        "MANDATE_CLEANUP_MINUTES.")
    tidy.set_defaults(run=cmd_cleanup)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="mandate: %(levelname)s: %(message)s")
    settings = reload_settings()
    url = settings.database_url
    command = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    try:
        if settings.env not in ENVIRONMENTS:
            raise CommandFailed(f"MANDATE_ENV must be {' or '.join(ENVIRONMENTS)}, not {settings.env!r}", EXIT_REFUSED)
        args.run(args, url)
    except CommandFailed as exc:
        print(f"mandate {command}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (MandateError, MissingSecretKey) as exc:  # refused by a domain rule: nothing was written
        print(f"mandate {command}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    except _database_errors() as exc:
        print(f"mandate {command}: the database at {shown_url(url)} failed: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
