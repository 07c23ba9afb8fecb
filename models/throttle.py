"""Throttling of consecutive failures, kept in the database so every server process sees it.

django-otp's model: after a number of free failures, each further failure doubles the delay
before the next attempt is even looked at; a success resets the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models import clock
from models.errors import RATE_LIMITED, MandateError
from models.tables import Throttle

MAX_DELAY_SECONDS = 15 * 60


@dataclass(frozen=True)
class Policy:
    free_failures: int          # failures answered at once, before any delay
    forget_after: float | None  # seconds without failure after which the count starts again

    def delay_after(self, failures: int) -> float:
        if failures <= self.free_failures:
            return 0.0
        return float(min(2 ** (failures - self.free_failures - 1), MAX_DELAY_SECONDS))


SECOND_FACTOR = Policy(free_failures=4, forget_after=None)
PASSWORD_PER_EMAIL = Policy(free_failures=4, forget_after=None)
# Many people share an address (a clinic's NAT): generous, and forgotten after an hour.
PASSWORD_PER_ADDRESS = Policy(free_failures=100, forget_after=3600)


def second_factor_key(user_id: int) -> str:
    return f"factor:{user_id}"


def email_key(email: str) -> str:
    return f"email:{email}"


def address_key(address: str) -> str:
    return f"address:{address}"


def rate_limited(retry_after: float) -> MandateError:
    return MandateError(RATE_LIMITED, retryAfter=max(1, math.ceil(retry_after)))


async def failures(key: str) -> int:
    row = await Throttle.filter(key=key).only("id", "failures").first()
    return row.failures if row else 0


def _standing(row: Throttle, policy: Policy, now: datetime) -> tuple[int, float]:
    """(failures that still count, seconds before the next attempt may be looked at)."""
    if row.last_failure_at is None or not row.failures:
        return 0, 0.0
    # Never negative: a failure stamped just after `now` was read (a parallel request, another
    # server's clock a little ahead) is as recent as can be, not a delay of its own.
    elapsed = max(0.0, (now - row.last_failure_at).total_seconds())
    if policy.forget_after is not None and elapsed >= policy.forget_after:
        return 0, 0.0
    return row.failures, max(0.0, policy.delay_after(row.failures) - elapsed)


async def claim_attempt(key: str, policy: Policy) -> int:
    """Count an attempt as a failure before it is checked; returns the count it makes.

    The count moves by compare-and-set, so of a burst of parallel attempts only those within the
    free failures are checked: the next one sees the delay (RATE_LIMITED). A success gives the
    count back (`reset`, or `release` where failures of others share the key).
    """
    for _ in range(50):
        now = clock.now()
        row = await Throttle.filter(key=key).first()
        if row is None:
            try:
                await Throttle.create(key=key, failures=1, last_failure_at=now)
                return 1
            except IntegrityError:  # another attempt created it first: read it again
                continue
        counted, retry_after = _standing(row, policy, now)
        if retry_after > 0:
            raise rate_limited(retry_after)
        claimed = await Throttle.filter(id=row.id, failures=row.failures).update(
            failures=counted + 1, last_failure_at=now
        )
        if claimed:
            return counted + 1
    raise rate_limited(1)  # contended beyond reason: refuse rather than check unthrottled


def refusal_after(wrong: MandateError, *claims: tuple[Policy, int]) -> MandateError:
    """The answer to a failed attempt that made these (policy, failures) claims: the plain error
    while every failure is free, else RATE_LIMITED for the longest delay."""
    delay = max(policy.delay_after(failures) for policy, failures in claims)
    return rate_limited(delay) if delay > 0 else wrong


async def release(key: str) -> None:
    """Give back one claimed attempt that succeeded."""
    await Throttle.filter(key=key, failures__gt=0).update(failures=F("failures") - 1)


async def reset(key: str) -> None:
    await Throttle.filter(key=key).update(failures=0, last_failure_at=None)


async def delete_stale(now: datetime) -> int:
    """Delete the rows whose failures no longer count: none left, or their policy's forget_after
    has passed since the last one (a row per address or email ever tried would pile up). The
    same rows whoever runs it, so several processes may. Returns how many went."""
    from datetime import timedelta

    from tortoise.expressions import Q

    stale = Q(failures__lte=0) | Q(last_failure_at__isnull=True)
    # Each key function's prefix, with the policy of the rows it makes.
    for prefix, policy in (
        (second_factor_key(""), SECOND_FACTOR),  # type: ignore[arg-type]
        (email_key(""), PASSWORD_PER_EMAIL),
        (address_key(""), PASSWORD_PER_ADDRESS),
    ):
        if policy.forget_after is not None:
            forgotten = now - timedelta(seconds=policy.forget_after)
            stale |= Q(key__startswith=prefix, last_failure_at__lte=forgotten)
    return await Throttle.filter(stale).delete()
