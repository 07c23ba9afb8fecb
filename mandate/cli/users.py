"""`mandate user create|disable|reset-2fa|list`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from mandate.cli.shared import EXIT_REFUSED, USER_HELP, CommandFailed, api_id, command_group, print_json, print_table, run, user_reference
from mandate.models import user_admin


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
    user = run(url, lambda: user_admin.create_user(args.email, args.name, password))
    note = "" if password is not None else "; no password: they cannot log in until given one"
    print(f"Created user {user.email} (id {user.id}, API id {api_id('User', user.id)}){note}.")


def cmd_user_disable(args: argparse.Namespace, url: str) -> None:
    reference = user_reference(args.user)

    async def disable() -> tuple[Any, int]:
        user = await user_admin.find_user(reference)
        return user, await user_admin.disable_user(user)

    user, ended = run(url, disable)
    print(f"Disabled {user.email}: password removed, {ended} live session(s) ended.")


def cmd_user_reset_two_factor(args: argparse.Namespace, url: str) -> None:
    reference = user_reference(args.user)

    async def reset() -> tuple[Any, bool]:
        user = await user_admin.find_user(reference)
        return user, await user_admin.reset_two_factor(user)

    user, had_two_factor = run(url, reset)
    removed = "TOTP device and recovery codes removed" if had_two_factor else "they had no 2FA"
    print(f"Reset the 2FA of {user.email}: {removed}, every session of theirs ended.")


def cmd_user_list(args: argparse.Namespace, url: str) -> None:
    users = run(url, user_admin.list_users)
    if args.json:
        print_json([{"id": u.id, "apiId": api_id("User", u.id), "email": u.email, "name": u.name,
                     "twoFactorEnabled": u.two_factor, "disabled": u.disabled} for u in users])
        return
    rows = [("ID", "API ID", "EMAIL", "NAME", "2FA", "DISABLED")] + [
        (str(u.id), api_id("User", u.id), u.email, u.name, "on" if u.two_factor else "off",
         "yes" if u.disabled else "no") for u in users]
    print_table(rows)


def register(commands) -> None:
    users = command_group(commands, "user", "create, disable or list users, or reset their 2FA")
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
    disable.add_argument("user", metavar="USER", help=USER_HELP)
    disable.set_defaults(run=cmd_user_disable)

    reset = users.add_parser(
        "reset-2fa", help="remove a user's 2FA, for one who lost their device",
        description="Remove the user's TOTP device, recovery codes and any pending enrolment, and end "
        "every session of theirs now. Where enforcement binds them, their next login must enrol again.")
    reset.add_argument("user", metavar="USER", help=USER_HELP)
    reset.set_defaults(run=cmd_user_reset_two_factor)

    listing = users.add_parser(
        "list", help="every user: ids, email, name, 2FA, disabled",
        description="Every user, by email: the number and API id, email, name, whether 2FA is on, and "
        "whether they are disabled (no password: they cannot log in).")
    listing.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    listing.set_defaults(run=cmd_user_list)
