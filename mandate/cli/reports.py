"""`mandate report compliance`."""

from __future__ import annotations

import argparse

from mandate.cli.shared import ACCOUNT_HELP, api_id, account_id, command_group, print_json, print_table, run
from mandate.models import reports


def _compliance_json(report: reports.ComplianceReport) -> dict:
    account, source = report.account, report.source
    return {
        "account": {
            "id": account.id, "apiId": api_id("Account", account.id), "name": account.name,
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
    async def report() -> reports.ComplianceReport:
        return await reports.compliance_report(await account_id(args.account))

    report = run(url, report)
    if args.json:
        print_json(_compliance_json(report))
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
        print()
        print_table([("EMAIL", "NAME", "2FA")] + [(u.email, u.name, "yes" if u.enrolled else "pending")
                                                 for u in report.users])


def register(commands) -> None:
    group = command_group(commands, "report", "reports on accounts")
    compliance = group.add_parser(
        "compliance", help="who an account's enforcement binds, and who has 2FA",
        description="The users an account's enforcement binds (a role on it, an ancestor or a descendant, "
        "and the site members of its subtree's sites), with their 2FA: the API's twoFactorCompliance.")
    compliance.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    compliance.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    compliance.set_defaults(run=cmd_report_compliance)
