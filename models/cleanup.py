"""Deleting what no longer counts: dead sessions, dead API tokens and stale throttle rows.

`mandate cleanup` runs it once; `mandate serve` every MANDATE_CLEANUP_MINUTES in each process.
Every delete is one statement on rows that stay dead, so several processes running it at once
delete each row once and harm nothing.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AsyncIterator

from mandate.models import clock, throttle
from mandate.models.tables import ApiToken, Session

log = logging.getLogger("mandate.cleanup")

# A dead session answers UNAUTHENTICATED whether its row is there or not; it is kept a week so
# that an incident can still be traced to its sessions (when, from which address), then goes:
# client addresses are personal data, kept no longer than they serve.
DEAD_SESSION_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Cleaned:
    sessions: int    # expired or revoked more than DEAD_SESSION_RETENTION ago
    throttles: int   # rows whose failures no longer count
    api_tokens: int = 0  # expired or revoked more than DEAD_SESSION_RETENTION ago

    def __str__(self) -> str:
        return (f"{self.sessions} dead session(s) (expired or revoked over {DEAD_SESSION_RETENTION.days} days ago), "
                f"{self.api_tokens} dead API token(s) (the same) and {self.throttles} stale throttle row(s)")


async def delete_dead_sessions(now: datetime) -> int:
    return await Session.dead_before(now - DEAD_SESSION_RETENTION).delete()


async def delete_dead_api_tokens(now: datetime) -> int:
    """As sessions: a dead token answers UNAUTHENTICATED either way; its row is kept as long."""
    return await ApiToken.dead_before(now - DEAD_SESSION_RETENTION).delete()


async def clean_up() -> Cleaned:
    now = clock.now()
    return Cleaned(await delete_dead_sessions(now), await throttle.delete_stale(now), await delete_dead_api_tokens(now))


async def clean_up_every(seconds: float) -> None:
    """Run until cancelled: a clean-up, then the interval, and so on; one at a time, since each
    waits for the last. A database that does not answer is warned about and tried next time."""
    while True:
        try:
            cleaned = await clean_up()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an outage must not end the schedule
            log.warning("cleanup failed (%s: %s); trying again in %s s", type(exc).__name__, exc, seconds)
        else:
            if cleaned.sessions or cleaned.throttles or cleaned.api_tokens:
                log.info("cleanup deleted %s", cleaned)
        await asyncio.sleep(seconds)


@asynccontextmanager
async def scheduled(minutes: float) -> AsyncIterator[asyncio.Task | None]:
    """The clean-up every `minutes` (none for 0) while the block runs, cancelled when it ends.
    Enter it where the database is set up: the task inherits that context."""
    task = asyncio.create_task(clean_up_every(minutes * 60), name="mandate-cleanup") if minutes > 0 else None
    try:
        yield task
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
