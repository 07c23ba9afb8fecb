"""`mandate account create|move|list`."""

from __future__ import annotations

import argparse

from mandate.cli.shared import ACCOUNT_HELP, account_id, api_id, command_group, print_json, run
from mandate.models import account_admin
from mandate.models.account_admin import TreeNode


def _where(parent: int | None) -> str:
    return f"under account {parent}" if parent is not None else "at the top"


def cmd_account_create(args: argparse.Namespace, url: str) -> None:
    async def create() -> tuple[account_admin.Account, int | None]:
        parent = await account_id(args.parent) if args.parent is not None else None
        return await account_admin.create_account(args.name, parent), parent

    account, parent = run(url, create)
    print(f"Created account {account.name!r} (id {account.id}, API id {api_id('Account', account.id)}) {_where(parent)}.")


def cmd_account_move(args: argparse.Namespace, url: str) -> None:
    async def move() -> tuple[int, int | None, bool]:
        moved, parent = await account_id(args.account), None if args.top else await account_id(args.parent)
        return moved, parent, await account_admin.move_account(moved, parent)

    moved, parent, done = run(url, move)
    if done:
        print(f"Moved account {moved} {_where(parent)}.")
    else:
        print(f"Account {moved} is {_where(parent)} already: nothing to do.")


def _enforcement(node: TreeNode) -> str:
    if node.source is None:
        return "not enforced"
    if node.source.id == node.row.id:
        return "enforced here"
    return f"enforced from account {node.source.id} ({node.source.name})"


def _node_json(node: TreeNode) -> dict:
    row, source = node.row, node.source
    return {
        "id": row.id, "apiId": api_id("Account", row.id), "name": row.name,
        "enforced": source is not None, "enforcedHere": row.enforced,
        "source": {"id": source.id, "name": source.name} if source is not None else None,
        "children": [_node_json(child) for child in node.children],
    }


def cmd_account_list(args: argparse.Namespace, url: str) -> None:
    forest = run(url, account_admin.account_forest)
    if args.json:
        print_json([_node_json(top) for top in forest])
        return

    def show(node: TreeNode, depth: int) -> None:
        print(f"{'  ' * depth}{node.row.name}  (id {node.row.id}, API id {api_id('Account', node.row.id)}): "
              f"{_enforcement(node)}")
        for child in node.children:
            show(child, depth + 1)

    for top in forest:
        show(top, 0)


def register(commands) -> None:
    accounts = command_group(commands, "account", "create, move or list accounts")
    create = accounts.add_parser("create", help="create an account",
                                 description="Create an account, at the top or under a parent.")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--parent", metavar="ACCOUNT", help=f"the parent: {ACCOUNT_HELP} (default: at the top)")
    create.set_defaults(run=cmd_account_create)

    move = accounts.add_parser(
        "move", help="move an account (with its subtree and sites)",
        description="Move an account, with its subtree and sites, under another account or to the top. "
        "Enforcement and roles follow the new tree from the next request.")
    move.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--parent", metavar="ACCOUNT", help="the new parent")
    where.add_argument("--top", action="store_true", help="make it the top of a tree of its own")
    move.set_defaults(run=cmd_account_move)

    listing = accounts.add_parser(
        "list", help="every account tree, with ids and enforcement",
        description="Every account tree, children indented under their parent (by name), each account "
        "with its number, its API id, and its enforcement: its own switch, or the ancestor's that covers it.")
    listing.add_argument("--json", action="store_true", help="the trees as JSON (each account with its children)")
    listing.set_defaults(run=cmd_account_list)
