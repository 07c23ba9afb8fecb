"""The `mandate` command: serve, migrate, import, demo.

Expected failures (a bad file, a refused demo, a database that does not answer) end with a
one-line message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

import uvicorn
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException

from mandate import db
from mandate.config import reload_settings
from mandate.demo import DEMO_LOGINS, DEMO_PASSWORD, DatabaseNotEmpty, demo_is_loaded, load_demo
from models.importing import ImportFileError, import_data

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


def _report_migrations(applied: list[str], *, quiet_when_none: bool) -> None:
    for name in applied:
        print(f"Applied migration {name}")
    if not applied and not quiet_when_none:
        print("No migrations to apply: the database is up to date.")


# -- commands --------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, url: str) -> None:
    _report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=False)


def cmd_serve(args: argparse.Namespace, url: str) -> None:
    _report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=True)
    sys.stdout.flush()  # before uvicorn's own log lines
    # The import string and factory let --workers start the app afresh in each process;
    # uvicorn picks uvloop and httptools by itself when they are installed.
    uvicorn.run(
        "gql.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers
    )


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
        epilog="Settings come from the environment: DATABASE_URL (default sqlite://mandate.sqlite3) "
        "and MANDATE_SECRET_KEY (the key that encrypts TOTP secrets at rest).",
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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="mandate: %(levelname)s: %(message)s")
    url = reload_settings().database_url
    try:
        args.run(args, url)
    except CommandFailed as exc:
        print(f"mandate {args.command}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except _database_errors() as exc:
        print(f"mandate {args.command}: the database at {shown_url(url)} failed: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
