"""The heart of Mandate: switching enforcement, compliance and resets (who must use 2FA: models/binding.py)."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from mandate.models import audit, clock, totp
from mandate.models.callers import Act, Caller
from mandate.models.errors import FORBIDDEN, NOT_FOUND, MandateError, bad_input
from mandate.models.grace import MAX_GRACE_PERIOD_HOURS
from mandate.models.reach import AccountView, Viewer
from mandate.models.sql import fetch
from mandate.models.tables import TWO_FACTOR_ENABLED_SQL, Account, User

# Users an account's enforcement binds: a role on it, an ancestor or a descendant, and the
# site members of its subtree's sites. Takes the account id twice.
_BOUND_USERS_CTE = """
    sub(id) AS (
        SELECT id FROM accounts WHERE id = ?
        UNION ALL
        SELECT a.id FROM accounts a JOIN sub ON a.parent_id = sub.id
    ),
    anc(id, parent_id) AS (
        SELECT id, parent_id FROM accounts WHERE id = ?
        UNION ALL
        SELECT a.id, a.parent_id FROM accounts a JOIN anc ON a.id = anc.parent_id
    ),
    bound(user_id) AS (
        SELECT m.user_id FROM memberships m
        WHERE m.account_id IN (SELECT id FROM sub) OR m.account_id IN (SELECT id FROM anc)
        UNION
        SELECT sm.user_id FROM site_memberships sm JOIN sites s ON s.id = sm.site_id
        WHERE s.account_id IN (SELECT id FROM sub)
    )
"""


def require_manager(view: AccountView | None) -> None:
    message = "You do not manage that account."
    if view is None:
        raise MandateError(FORBIDDEN, message)
    view.require_manager(message)


async def set_enforcement(
    caller: Caller, viewer: Viewer, account_id: int, enforced: bool, client_address: str | None,
    grace_period_hours: int = 0,
) -> AccountView:
    """Set this account's own switch and grace period: one row and one audit event, whatever the
    tree; a call that changes neither writes nothing.

    Rule 1, whole: only a manager of the account (anyone else: FORBIDDEN, whatever their 2FA), and
    only from a login secured by a second factor (TWO_FACTOR_SETUP_REQUIRED)."""
    caller.require(Act.READ)
    view = await viewer.view(account_id)
    require_manager(view)
    caller.require(Act.MANAGE)
    if not 0 <= grace_period_hours <= MAX_GRACE_PERIOD_HOURS:  # only the account's manager learns the range
        raise bad_input(f"gracePeriodHours is 0 to {MAX_GRACE_PERIOD_HOURS:,}.", "gracePeriodHours")
    change = dict(
        enforced=enforced,
        grace_period_hours=grace_period_hours,
        enforcement_changed_at=clock.now(),
        enforcement_changed_by_id=caller.user_id,
    )
    async with in_transaction():
        # Conditional updates decide what changed, so that racing calls audit what each did.
        action = None
        if await Account.filter(id=account_id).exclude(enforced=enforced).update(**change):
            action = audit.ENFORCEMENT_ON if enforced else audit.ENFORCEMENT_OFF
        elif await Account.filter(id=account_id).exclude(grace_period_hours=grace_period_hours).update(**change):
            action = audit.GRACE_PERIOD_CHANGED
        if action is not None:
            await audit.record(action, actor_id=caller.user_id, account_id=account_id, client_address=client_address)
    return await viewer.view(account_id)


@dataclass(frozen=True)
class BoundUser:
    id: int
    email: str
    name: str
    enrolled: bool


async def bound_users(account_id: int) -> list[BoundUser]:
    rows = await fetch(
        f"""
        WITH RECURSIVE {_BOUND_USERS_CTE}
        SELECT u.id, u.email, u.name, {TWO_FACTOR_ENABLED_SQL} AS enrolled
        FROM users u JOIN bound ON bound.user_id = u.id
        ORDER BY u.email
        """,
        [account_id, account_id],
    )
    return [BoundUser(r["id"], r["email"], r["name"], bool(r["enrolled"])) for r in rows]


@dataclass(frozen=True)
class ComplianceCounts:
    total: int
    enrolled: int


async def compliance_counts(account_id: int) -> ComplianceCounts:
    """How many users this account's enforcement binds, and how many of them have 2FA: one
    aggregate, whatever their number."""
    rows = await fetch(
        f"""
        WITH RECURSIVE {_BOUND_USERS_CTE}
        SELECT COUNT(*) AS total, SUM(CASE WHEN {TWO_FACTOR_ENABLED_SQL} THEN 1 ELSE 0 END) AS enrolled
        FROM users u JOIN bound ON bound.user_id = u.id
        """,
        [account_id, account_id],
    )
    return ComplianceCounts(int(rows[0]["total"]), int(rows[0]["enrolled"] or 0))


async def pending_users(account_id: int, first: int | None = None, after_user_id: int | None = None) -> list[BoundUser]:
    """The bound users without 2FA, by email; a page of `first` after the user `after_user_id`
    (keyset: a user who enrols meanwhile shifts nothing). An `after` user this account does not
    bind gives an empty page."""
    after = ""
    params: list = [account_id, account_id]
    if after_user_id is not None:
        after = "AND u.email > (SELECT a.email FROM users a JOIN bound ab ON ab.user_id = a.id WHERE a.id = ?)"
        params.append(after_user_id)
    limit = ""
    if first is not None:
        limit = "LIMIT ?"
        params.append(first)
    rows = await fetch(
        f"""
        WITH RECURSIVE {_BOUND_USERS_CTE}
        SELECT u.id, u.email, u.name
        FROM users u JOIN bound ON bound.user_id = u.id
        WHERE NOT {TWO_FACTOR_ENABLED_SQL} {after}
        ORDER BY u.email
        {limit}
        """,
        params,
    )
    return [BoundUser(r["id"], r["email"], r["name"], False) for r in rows]


async def binds(account_id: int, user_id: int) -> bool:
    """Whether this account's enforcement binds the user."""
    rows = await fetch(
        f"WITH RECURSIVE {_BOUND_USERS_CTE} SELECT 1 AS hit FROM bound WHERE user_id = ?",
        [account_id, account_id, user_id],
    )
    return bool(rows)


async def audit_events(account_id: int, first: int, before_id: int | None) -> list[dict]:
    """This account's log, newest first: the events tied to it or an account below it, and the
    events tied to no account (a user's own enrolment, failed codes...) of users it binds. An
    event tied to another tree never shows, whoever its subject is."""
    rows = await fetch(
        f"""
        WITH RECURSIVE {_BOUND_USERS_CTE}
        SELECT e.id, e.at, e.action, e.actor_id, e.subject_id, e.client_address
        FROM audit_events e
        WHERE (e.account_id IN (SELECT id FROM sub)
               OR (e.account_id IS NULL AND e.subject_id IN (SELECT user_id FROM bound)))
          AND e.id < ?
        ORDER BY e.id DESC
        LIMIT ?
        """,
        [account_id, account_id, before_id if before_id is not None else 2**62, first + 1],
    )
    return rows


async def manages_everything_reached_by(manager: Viewer, user_id: int) -> bool:
    """True when every account the user reaches lies in trees this manager manages."""
    target = await Viewer.load(user_id)
    reached = sorted(set(target.roles) | set(target.site_accounts))
    if not reached:
        return False
    views = await manager.views(reached)
    return all(view.is_manager for view in views.values()) and len(views) == len(reached)


async def reset_member_two_factor(
    caller: Caller, viewer: Viewer, account_id: int, user_id: int, client_address: str | None
) -> User:
    """Remove a member's TOTP and recovery codes and end their sessions.

    The whole rule: a manager of the account, from a login secured by a second factor (rule 1's
    checks, in its order), never of themself, only of a user the account binds, and only when
    every account that user reaches lies in trees this manager manages."""
    caller.require(Act.READ)
    require_manager(await viewer.view(account_id))
    caller.require(Act.MANAGE)
    if user_id == caller.user_id:  # one's own 2FA goes only with a code, and not while enforced
        raise MandateError(FORBIDDEN, "You cannot reset your own two-factor authentication: use disableTotp.")
    if not await User.exists(id=user_id) or not await binds(account_id, user_id):
        raise MandateError(NOT_FOUND, "No such member on that account.")
    if not await manages_everything_reached_by(viewer, user_id):
        raise MandateError(
            FORBIDDEN, "That user also reaches accounts you do not manage: ask their managers."
        )
    async with in_transaction():
        await totp.remove_two_factor(user_id)
        await audit.record(
            audit.TWO_FACTOR_RESET,
            actor_id=caller.user_id,
            subject_id=user_id,
            account_id=account_id,
            client_address=client_address,
        )
    return await totp.with_device(user_id)
