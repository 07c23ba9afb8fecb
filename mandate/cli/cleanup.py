"""`mandate cleanup`."""

from __future__ import annotations

import argparse

from mandate.cli.shared import run
from mandate.models import cleanup


def cmd_cleanup(args: argparse.Namespace, url: str) -> None:
    print(f"Deleted {run(url, cleanup.clean_up)}.")


def register(commands) -> None:
    tidy = commands.add_parser(
        "cleanup", help="delete dead sessions, dead API tokens and stale throttle rows",
        description=f"Delete sessions and API tokens expired or revoked over {cleanup.DEAD_SESSION_RETENTION.days} days ago and "
        "throttle rows whose failures no longer count, and say how many. `mandate serve` does the same every "
        "MANDATE_CLEANUP_MINUTES.")
    tidy.set_defaults(run=cmd_cleanup)
