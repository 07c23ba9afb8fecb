"""Throttling of consecutive failures, kept in the database so every server process sees it.

django-otp's model: after a number of free failures, each further failure doubles the delay
before the next attempt is even looked at; a success resets the count.

Two ways to count, for two kinds of key:
- `claim_attempt` counts an attempt as a failure *before* it is checked, by compare-and-set, so
  that a burst of parallel attempts is held to the count: of the burst only those within the
  free failures are checked, the rest are refused unchecked. Used where one person's attempts
  share the key (a user's second factor; an email, alone or from one address), so only that
  person's own attempts contend for its row.
- `check_standing` plus `record_failure` look before and count after, with no claim: for the
  key that everyone behind one address shares, so that a clinic's honest logins at the start of
  a shift never contend for one row (nor are refused by a limit on failures they are not).

An attempt that was checked is answered as checked: a wrong answer is INVALID_CODE or
INVALID_CREDENTIALS (with `retryAfter` once a delay runs after it); RATE_LIMITED means the
attempt was not looked at.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AsyncIterator

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from mandate.models import clock
from mandate.models.errors import RATE_LIMITED, MandateError
from mandate.models.tables import Throttle, User

MAX_DELAY_SECONDS = 15 * 60


@dataclass(frozen=True)
class Policy:
    free_failures: int          # failures answered at once, before any delay
    forget_after: float | None  # seconds without failure after which the count starts again
    lock_after: int | None = None  # failures after which attempts are refused until a reset
    locked_message: str = "Too many failures: locked until the count is reset."

    def delay_after(self, failures: int) -> float:
        """Seconds before the next attempt may be looked at, after this many failures: none while
        they are free, then 1 s doubling per failure, at most MAX_DELAY_SECONDS."""
        if failures < self.free_failures:
            return 0.0
        return float(min(2 ** min(failures - self.free_failures, 20), MAX_DELAY_SECONDS))


# Passwords of one email from one client address: a guesser there is slowed after 4.
# Forgotten after a day without one: the per-email count still bounds a guesser who waits.
PASSWORD_PER_EMAIL_AND_ADDRESS = Policy(free_failures=4, forget_after=24 * 3600)
# Passwords of one email from anywhere: NIST SP 800-63B 5.2.2's ceiling of 100 consecutive
# failures per account, far above the per-address one, so that a stranger elsewhere cannot lock
# a user out with a few guesses, while guessing from many addresses stays bounded.
PASSWORD_PER_EMAIL = Policy(free_failures=100, forget_after=None)
# Many people share an address (a clinic's NAT): generous, and forgotten after an hour.
PASSWORD_PER_ADDRESS = Policy(free_failures=100, forget_after=3600)


def email_key(email: str) -> str:
    return f"email:{email}"


EMAIL_AND_ADDRESS = "email-address:"


def email_and_address_key(email: str, address: str | None) -> str:
    # Hashed: an email (254) and an address side by side would not fit the key column (300).
    return EMAIL_AND_ADDRESS + hashlib.sha256(f"{email}\n{address or ''}".encode()).hexdigest()


def address_key(address: str) -> str:
    return f"address:{address}"


def rate_limited(retry_after: float) -> MandateError:
    return MandateError(RATE_LIMITED, retryAfter=_whole_seconds(retry_after))


def locked(policy: Policy) -> MandateError:
    return MandateError(RATE_LIMITED, policy.locked_message, retryAfter=MAX_DELAY_SECONDS, locked=True)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


async def failures(key: str) -> int:
    row = await Throttle.filter(key=key).only("id", "failures").first()
    return row.failures if row else 0


def _standing(row: Throttle | None, policy: Policy, now: datetime) -> tuple[int, float]:
    """(failures that still count, seconds before the next attempt may be looked at)."""
    if row is None or row.last_failure_at is None or not row.failures:
        return 0, 0.0
    # Never negative: a failure stamped just after `now` was read (a parallel request, another
    # server's clock a little ahead) is as recent as can be, not a delay of its own.
    elapsed = max(0.0, (now - row.last_failure_at).total_seconds())
    if policy.forget_after is not None and elapsed >= policy.forget_after:
        return 0, 0.0
    return row.failures, max(0.0, policy.delay_after(row.failures) - elapsed)


async def claim_attempt(key: str, policy: Policy) -> int:
    """Count an attempt as a failure before it is checked; returns the count it makes.

    Refused (RATE_LIMITED, nothing counted) while the delay after the failures so far runs, or
    for good once the policy's lock is reached. The count moves by compare-and-set, so of a
    burst of parallel attempts only those within the free failures are checked: the next one
    finds the delay running. A success gives the count back (`reset`).
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
        if policy.lock_after is not None and counted >= policy.lock_after:
            raise locked(policy)
        if retry_after > 0:
            raise rate_limited(retry_after)
        claimed = await Throttle.filter(id=row.id, failures=row.failures).update(
            failures=counted + 1, last_failure_at=now
        )
        if claimed:
            return counted + 1
    raise rate_limited(1)  # contended beyond reason (one person's key): refuse rather than check unthrottled


class Attempt:
    """One attempt claimed under some (key, policy) limits, as `counted_attempt` yields it."""

    def __init__(self, limits: tuple[tuple[str, Policy], ...]) -> None:
        self.keys = [key for key, _ in limits]
        self.counts: list[tuple[Policy, int]] = []
        self.checked_and_refused = False
        self.succeeded = False

    def refused(self, wrong: MandateError, *more: tuple[Policy, int]) -> MandateError:
        """The attempt was checked and is wrong: its counts stand. Returns the answer to raise,
        `wrong` with `retryAfter` once a delay runs after it (`refusal_after`)."""
        self.checked_and_refused = True
        return refusal_after(wrong, *self.counts, *more)

    async def succeed(self) -> None:
        """The attempt is right: every count starts again. Call it inside the transaction of
        what the attempt allows, so that both commit or neither does; otherwise the end of the
        `counted_attempt` block does it."""
        await reset(*self.keys)
        self.succeeded = True


@asynccontextmanager
async def counted_attempt(*limits: tuple[str, Policy]) -> AsyncIterator[Attempt]:
    """One attempt, claimed under each (key, policy) before it is checked, so that parallel
    attempts cannot outrun the delay; the one claim and release of passwords and second factors.

    The body checks the attempt. A wrong one raises `attempt.refused(error)`: the counts stand.
    Ending normally is a success: every count starts again (`attempt.succeed`). Any other
    exception means nothing was decided: the claims are given back, so an attempt that ends in
    an error spends nothing."""
    attempt = Attempt(limits)
    try:
        for key, policy in limits:
            attempt.counts.append((policy, await claim_attempt(key, policy)))
    except BaseException:
        for key, _ in limits[: len(attempt.counts)]:
            await release(key)
        raise
    try:
        yield attempt
    except BaseException:
        if not attempt.checked_and_refused:
            for key, _ in limits:
                await release(key)
        raise
    if not attempt.succeeded:
        await attempt.succeed()


async def check_standing(key: str, policy: Policy) -> None:
    """Refuse (RATE_LIMITED) while the delay after this key's failures runs; counts nothing."""
    _, retry_after = _standing(await Throttle.filter(key=key).first(), policy, clock.now())
    if retry_after > 0:
        raise rate_limited(retry_after)


async def record_failure(key: str, policy: Policy) -> int:
    """Count one checked failure under the key, with no claim before it; returns the count.

    Each step is one atomic statement: racing failures each add one. (Two racing failures that
    both find a count forgotten may start it at 1 together: one failure fewer, of a generous limit.)"""
    now = clock.now()
    if policy.forget_after is not None:
        since = now - timedelta(seconds=policy.forget_after)
        if await Throttle.filter(key=key, last_failure_at__gt=since).update(
            failures=F("failures") + 1, last_failure_at=now
        ):
            return await failures(key)
        if await Throttle.filter(key=key).update(failures=1, last_failure_at=now):
            return 1
    elif await Throttle.filter(key=key).update(failures=F("failures") + 1, last_failure_at=now):
        return await failures(key)
    try:
        await Throttle.create(key=key, failures=1, last_failure_at=now)
        return 1
    except IntegrityError:  # created meanwhile by a racing failure: count this one on it
        await Throttle.filter(key=key).update(failures=F("failures") + 1, last_failure_at=now)
        return await failures(key)


def refusal_after(wrong: MandateError, *claims: tuple[Policy, int]) -> MandateError:
    """The answer to a checked, failed attempt that made these (policy, failures) counts: the
    plain error, with `retryAfter` once the failure starts a delay (the longest of them)."""
    delay = max(policy.delay_after(count) for policy, count in claims)
    if delay <= 0:
        return wrong
    extensions = {name: value for name, value in wrong.extensions.items() if name != "code"}
    return MandateError(wrong.code, wrong.message, **extensions, retryAfter=_whole_seconds(delay))


async def release(key: str) -> None:
    """Give back one claimed attempt that was never checked (it ended in an error)."""
    await Throttle.filter(key=key, failures__gt=0).update(failures=F("failures") - 1)


async def reset(*keys: str) -> None:
    """A success: the count of each key starts again (one statement)."""
    await Throttle.filter(key__in=keys).update(failures=0, last_failure_at=None)


async def delete_stale(now: datetime) -> int:
    """Delete the rows whose failures no longer count, so that a row per address or email ever
    tried does not pile up: those with none left, those whose policy has forgotten them, and
    those of an email no user has once no delay can still run. The same rows whoever runs it,
    so several processes may. Returns how many went."""
    stale = Q(failures__lte=0) | Q(last_failure_at__isnull=True)
    for prefix, policy in (
        (EMAIL_AND_ADDRESS, PASSWORD_PER_EMAIL_AND_ADDRESS),
        (address_key(""), PASSWORD_PER_ADDRESS),
    ):
        if policy.forget_after is not None:
            stale |= Q(key__startswith=prefix, last_failure_at__lte=now - timedelta(seconds=policy.forget_after))
    deleted = await Throttle.filter(stale).delete()
    # An email's count is kept until a success (NIST's consecutive failures), but an email nobody
    # has can have none: its count only delays its next guess, which lands on no account.
    prefix, quiet, after_id = email_key(""), now - timedelta(seconds=MAX_DELAY_SECONDS), 0
    while True:
        rows = await Throttle.filter(key__startswith=prefix, last_failure_at__lte=quiet, id__gt=after_id).order_by(
            "id"
        ).limit(1000).values_list("id", "key")
        if not rows:
            return deleted
        after_id = rows[-1][0]
        emails = {key[len(prefix):] for _, key in rows}
        known = set(await User.filter(email__in=emails).values_list("email", flat=True))
        if unknown := [i for i, key in rows if key[len(prefix):] not in known]:
            deleted += await Throttle.filter(id__in=unknown).delete()
