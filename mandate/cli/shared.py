"""What every command of `mandate` shares: exit codes, the database URL's checks, migrating and
running one operation against the database, and reading ACCOUNT and USER arguments."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from typing import Any, Awaitable, Callable, TextIO
from urllib.parse import urlsplit, urlunsplit

from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException

from mandate import db
from mandate.models.account_admin import find_account_by_path
from mandate.models.errors import NOT_FOUND, MandateError

EXIT_FAILED = 1    # the database did not answer, or another runtime failure
EXIT_REFUSED = 2   # a bad file or a refused command: nothing was written (argparse uses 2 too)
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a command killed by a closed pipe ends with

ACCOUNT_HELP = "an account's number, its API id (as `accounts { id }` gives it) or its path of names (\"Group/Practice\")"
USER_HELP = "an email, a user's number, or their API id"


class CommandFailed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def database_errors() -> tuple[type[BaseException], ...]:
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


# -- the database ----------------------------------------------------------------------------


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


def report_migrations(applied: list[str], *, quiet_when_none: bool, out: TextIO | None = None) -> None:
    for name in applied:
        print(f"Applied migration {name}", file=out)
    if not applied and not quiet_when_none:
        print("No migrations to apply: the database is up to date.", file=out)


def run(url: str, operation: Callable[[], Awaitable[Any]]) -> Any:
    """Migrate if needed (noted on stderr, so that stdout holds only the command's answer), then
    run one operation against the database."""

    async def run() -> Any:
        report_migrations(await apply_migrations(url), quiet_when_none=True, out=sys.stderr)
        async with db.connected(url):
            return await operation()

    return asyncio.run(run())


# -- ACCOUNT and USER ----------------------------------------------------------------------------


def api_id(type_name: str, pk: int) -> str:
    from mandate.gql.ids import to_global_id

    return to_global_id(type_name, pk)


def _api_id_of(value: str) -> tuple[str, int] | None:
    """(type, number) of an API id; None when the value is not one."""
    from mandate.gql.ids import from_global_id

    try:
        return from_global_id(value)
    except MandateError:
        return None


def _api_pk(value: str, type_name: str) -> int | None:
    """The number behind a database id or an API id of this type; None when it is neither."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    found = _api_id_of(value)
    return found[1] if found is not None and found[0] == type_name else None


async def account_id(value: str) -> int:
    """ACCOUNT: a number (the database id), the API's id (as `accounts { id }` gives it), or the
    path of names from the top of its tree ("Northwind Health/Riverside Dental")."""
    pk = _api_pk(value, "Account")
    if pk is not None:
        return pk
    if _api_id_of(value) is None:  # not another type's API id: a path of names
        try:
            return (await find_account_by_path(value.split("/"))).id
        except MandateError as exc:
            if exc.code != NOT_FOUND:
                raise
    raise CommandFailed(f"{value!r} is not an account id, and no account has that path of names: give its "
                        "number, its API id or its path (\"Group/Practice\")", EXIT_REFUSED)


def user_reference(value: str) -> int | str:
    """USER: an email, a number (the database id) or the API's id."""
    if "@" in value:
        return value
    pk = _api_pk(value, "User")
    if pk is None:
        raise CommandFailed(f"{value!r} is not a user: give an email, a number or an API id", EXIT_REFUSED)
    return pk


def command_group(commands, name: str, help: str):
    """`mandate NAME ACTION`: a group of commands, each ACTION added to what this returns."""
    parser = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def print_json(value: Any) -> None:
    import json

    print(json.dumps(value, ensure_ascii=False, indent=2))




def print_table(rows: list[tuple[str, ...]], indent: str = "") -> None:
    """Columns padded to their widest cell, two spaces apart; the last one unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(indent + "".join(f"{cell:<{width}}  " for cell, width in zip(row, widths)) + row[-1])
