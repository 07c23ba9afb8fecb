"""The one clock the domain reads, so that tests can move time without sleeping."""

from __future__ import annotations

import time as _time
from datetime import datetime, timezone

# Seconds added to the wall clock; only tests change it.
offset: float = 0.0


def time() -> float:
    return _time.time() + offset


def now() -> datetime:
    return datetime.fromtimestamp(time(), tz=timezone.utc)
