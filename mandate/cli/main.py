"""The `mandate` command: its parser, assembled from each command group's module, and how a
failure ends (one line on stderr and an exit code, never a traceback)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from mandate.cli import accounts, audit, cleanup, data, keys, members, reports, serve, users
from mandate.cli.shared import (
    EXIT_CLOSED_PIPE, EXIT_FAILED, EXIT_REFUSED, CommandFailed, database_errors, shown_url,
)
from mandate.config import ENVIRONMENTS, MissingSecretKey, reload_settings
from mandate.models.errors import MandateError

# In the order `mandate --help` lists them.
GROUPS = [serve, data, users, accounts, members, reports, audit, keys, cleanup]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mandate",
        description="Mandate: two-factor enforcement for account trees, served as a GraphQL API.",
        epilog="Settings come from the environment: DATABASE_URL (default sqlite://mandate.sqlite3), "
        "MANDATE_SECRET_KEY (the keys that encrypt TOTP secrets at rest), MANDATE_ENV and more: "
        "the README's Settings lists them all. ACCOUNT is an account's number, its API id or its "
        "path of names (\"Group/Practice\"); USER is an email, a number or an API id.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return parser


def _quiet_closed_pipe() -> None:
    """The reader went away (`mandate audit export | head -1`): nothing more can be said to it,
    and Python's own flush at exit must not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_CLOSED_PIPE)


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
        sys.stdout.flush()  # inside the try: a pipe closed on the last lines shows here
    except CommandFailed as exc:
        print(f"mandate {command}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (MandateError, MissingSecretKey) as exc:  # refused by a domain rule: nothing was written
        print(f"mandate {command}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    except BrokenPipeError:
        _quiet_closed_pipe()
    except database_errors() as exc:
        print(f"mandate {command}: the database at {shown_url(url)} failed: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)
