"""`mandate import` and `mandate demo`: users, accounts, sites and roles from a file, or the demo's."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from mandate import db
from mandate.cli.shared import EXIT_REFUSED, CommandFailed, apply_migrations, print_table, report_migrations
from mandate.demo import DEMO_LOGINS, DEMO_PASSWORD, DatabaseNotEmpty, DemoNow, demo_as_it_stands, load_demo
from mandate.models.importing import ImportFileError, import_data


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
    report_migrations(applied, quiet_when_none=True)
    print(f"Imported {_source_name(args.file)}: {summary}")
    for warning in summary.warnings:
        print(f"warning: {warning}")


async def _demo(url: str, if_empty: bool) -> tuple[list[str], Any, DemoNow | None]:
    """(migrations applied, the summary or None when nothing was loaded, the demo as it stands
    when it was there already)."""
    applied = await apply_migrations(url)
    async with db.connected(url):
        try:
            return applied, await load_demo(), None
        except DatabaseNotEmpty as exc:
            if if_empty:
                return applied, None, await demo_as_it_stands()
            raise CommandFailed(f"{exc} (use a new DATABASE_URL)", EXIT_REFUSED)


def cmd_demo(args: argparse.Namespace, url: str) -> None:
    applied, summary, now = asyncio.run(_demo(url, args.if_empty))
    report_migrations(applied, quiet_when_none=True)
    if summary is not None:
        print(f"Loaded the demo organisation Northwind Health ({summary}).")
        print(f"Every demo login has the password {DEMO_PASSWORD!r}. In a new demo nobody has 2FA and it is")
        print("enforced nowhere: log in as the group manager, set up 2FA, then switch enforcement on.\n")
        print_table([("email", "role", "sees")] + [(d.email, d.role, d.sees) for d in DEMO_LOGINS], indent="  ")
        return
    if now is None:
        print("The database already holds data, and not the demo organisation: the demo was not loaded.")
        return
    print("The demo organisation Northwind Health is already loaded; as it stands now, with the demo")
    print(f"password {DEMO_PASSWORD!r} where it still works:\n")

    def state(login) -> str:
        if not login.demo_password:
            return "password changed or removed"
        return "demo password, 2FA set up" if login.two_factor else "demo password, no 2FA yet"

    print_table([("email", "role", "now")] + [(n.login.email, n.login.role, state(n)) for n in now.logins], indent="  ")
    print("\nEnforcement is " + (f"on for {', '.join(now.enforced)}." if now.enforced else "switched on nowhere."))


def register(commands) -> None:
    importer = commands.add_parser(
        "import", help="add users, accounts, sites and roles from a JSON file",
        description="Merge users, accounts, sites and roles from a JSON file in the import format: "
        "never a deletion; accounts are matched by their path of names, users by email, and an "
        "existing user keeps their password unless the file gives one. A bad file (a key the format "
        "does not have included) writes nothing. Every change is audited as the operator's commands' are.",
    )
    importer.add_argument("file", metavar="FILE.json", help="the file to import, or - for standard input")
    importer.set_defaults(run=cmd_import)

    demo = commands.add_parser("demo", help="load a small demo organisation into an empty database",
                               description="Load the demo healthcare group Northwind Health into an "
                               "empty database and print its logins.")
    demo.add_argument("--if-empty", action="store_true",
                      help="when the database already holds data, say so and succeed instead of failing")
    demo.set_defaults(run=cmd_demo)
