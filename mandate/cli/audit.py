"""`mandate audit export`: the audit log as JSON lines."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta, timezone

from mandate.cli.shared import EXIT_REFUSED, CommandFailed, command_group, run
from mandate.models import clock, reports

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
        async for event in reports.audit_events_since(since):
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

    count = run(url, export)
    sys.stdout.flush()  # a closed pipe shows here, before the count claims the events went out
    print(f"mandate audit export: {count} event(s) since {since.isoformat()}", file=sys.stderr)


def register(commands) -> None:
    audit = command_group(commands, "audit", "the audit log")
    export = audit.add_parser("export", help="print audit events as JSON lines, oldest first",
                              description="Print every audit event since a time, oldest first, one JSON "
                              "object a line (ids, emails, account names; never a secret).")
    export.add_argument("--since", required=True, metavar="WHEN",
                        help="an ISO 8601 date or time, UTC unless it says otherwise (2026-05-01, "
                        "2026-05-01T08:00+01:00), or a duration back from now (90m, 24h, 7d)")
    export.set_defaults(run=cmd_audit_export)
