"""The domain's clock, as tests move it instead of sleeping."""

from __future__ import annotations

import time

from mandate.models import clock as domain_clock


def offset_to_a_fresh_step() -> float:
    """A clock offset that puts the domain's time just after a 30 s step begins, so a test has
    nearly 30 s before a code computed now stops being the current step's."""
    return 30 - (time.time() % 30) + 0.25


class Clock:
    """Moves the domain's clock (TOTP steps, throttling delays, token expiry)."""

    def advance(self, seconds: float) -> None:
        domain_clock.offset += seconds

    def time(self) -> float:
        return domain_clock.time()
