"""The operator's reports: who an account's enforcement binds (the API's compliance), and the
audit log since a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator

from mandate.models.account_admin import no_account
from mandate.models.enforcement import BoundUser, bound_users
from mandate.models.reach import AccountRow, chains, nearest_enforced
from mandate.models.tables import AuditEvent


@dataclass(frozen=True)
class ComplianceReport:
    account: AccountRow
    source: AccountRow | None   # the nearest account, this one or an ancestor, whose switch is on
    users: list[BoundUser]      # everyone this account's enforcement binds, by email

    @property
    def pending(self) -> list[BoundUser]:
        return [u for u in self.users if not u.enrolled]


async def compliance_report(account_id: int) -> ComplianceReport:
    """The same users and counts as the API's `Account.twoFactorCompliance`."""
    chain = (await chains([account_id])).get(account_id)
    if chain is None:
        raise no_account(account_id)
    return ComplianceReport(chain[0], nearest_enforced(chain), await bound_users(account_id))


async def audit_events_since(since: datetime, batch: int = 1000) -> AsyncIterator[dict]:
    """Every audit event at or after `since`, oldest first, read a batch at a time."""
    after_id = 0
    while True:
        rows = await AuditEvent.filter(at__gte=since, id__gt=after_id).order_by("id").limit(batch).values(
            "id", "at", "action", "actor_id", "actor__email", "subject_id", "subject__email",
            "account_id", "account__name", "client_address",
        )
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after_id = rows[-1]["id"]
