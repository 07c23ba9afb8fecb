"""The audit log as a Relay connection, newest first."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Optional

import strawberry

from mandate.gql.users import UserNode
from mandate.models import enforcement
from mandate.models.errors import bad_input

DEFAULT_PAGE = 50
MAX_PAGE = 200


def _cursor(event_id: int) -> str:
    return base64.b64encode(f"audit:{event_id}".encode()).decode()


def _after_id(cursor: str) -> int:
    try:
        kind, _, raw = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii").partition(":")
        if kind != "audit" or not raw.isdigit() or len(raw) > 18:
            raise ValueError
        return int(raw)
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_input("That is not a cursor of this list.", "after") from None


@strawberry.type
class AuditEvent:
    at: datetime
    action: str = strawberry.field(description="e.g. ENFORCEMENT_ON, TOTP_CONFIRMED, SECOND_FACTOR_FAILED")
    client_address: Optional[str]
    actor_id: strawberry.Private[int | None]
    subject_id: strawberry.Private[int | None]

    async def _user(self, info: strawberry.Info, user_id: int | None) -> UserNode | None:
        user = await info.context.users.load(user_id) if user_id is not None else None
        return UserNode.of(user, seen_by_manager=True) if user is not None else None

    @strawberry.field(description="Who did it (null for the system).")
    async def actor(self, info: strawberry.Info) -> Optional[UserNode]:
        return await self._user(info, self.actor_id)

    @strawberry.field(description="Whom it concerned, where a user.")
    async def subject(self, info: strawberry.Info) -> Optional[UserNode]:
        return await self._user(info, self.subject_id)


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: Optional[str]


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo

    @classmethod
    async def page(cls, account_id: int, first: int | None, after: str | None) -> AuditEventConnection:
        first = DEFAULT_PAGE if first is None else first  # API.md: `first: Int = 50`, null alike
        if not 0 <= first <= MAX_PAGE:
            raise bad_input(f"first is 0 to {MAX_PAGE}.", "first")
        rows = await enforcement.audit_events(account_id, first, _after_id(after) if after else None)
        edges = [
            AuditEventEdge(
                cursor=_cursor(row["id"]),
                node=AuditEvent(
                    at=_as_datetime(row["at"]),
                    action=row["action"],
                    client_address=row["client_address"],
                    actor_id=row["actor_id"],
                    subject_id=row["subject_id"],
                ),
            )
            for row in rows[:first]
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None),
        )


def _as_datetime(value) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value
