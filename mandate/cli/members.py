"""`mandate member add|remove`: roles on accounts."""

from __future__ import annotations

import argparse
from typing import Any

from mandate.cli.shared import ACCOUNT_HELP, USER_HELP, account_id, command_group, run, user_reference
from mandate.models import memberships, user_admin
from mandate.models.tables import Role


def cmd_member_add(args: argparse.Namespace, url: str) -> None:
    reference, role = user_reference(args.user), Role(args.role.upper())

    async def add() -> tuple[int, Any, str]:
        account = await account_id(args.account)
        user = await user_admin.find_user(reference)
        return account, user, await memberships.add_member(account, user, role)

    account, user, done = run(url, add)
    if done == "unchanged":
        print(f"{user.email} is {role.value} of account {account} already: nothing to do.")
    else:
        print(f"{user.email} is now {role.value} of account {account} (role {done}).")


def cmd_member_remove(args: argparse.Namespace, url: str) -> None:
    reference = user_reference(args.user)

    async def remove() -> tuple[int, Any, Role]:
        account = await account_id(args.account)
        user = await user_admin.find_user(reference)
        return account, user, await memberships.remove_member(account, user)

    account, user, role = run(url, remove)
    print(f"Removed the {role.value} role of {user.email} on account {account}.")


def register(commands) -> None:
    members = command_group(commands, "member", "give or take away roles on accounts")
    add = members.add_parser(
        "add", help="give a user a role on an account (or change it)",
        description="Give a user a role on an account, or change the role they hold there. A role "
        "reaches the account's whole subtree.")
    add.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    add.add_argument("user", metavar="USER", help=USER_HELP)
    add.add_argument("--role", type=str.upper, choices=[r.value for r in Role], default=Role.MEMBER.value,
                     help="(default: %(default)s)")
    add.set_defaults(run=cmd_member_add)

    remove = members.add_parser("remove", help="take away a user's role on an account",
                                description="Take away the role a user holds on this account.")
    remove.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    remove.add_argument("user", metavar="USER", help=USER_HELP)
    remove.set_defaults(run=cmd_member_remove)
