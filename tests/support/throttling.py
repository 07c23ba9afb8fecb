"""Failed attempts, one after another, and how the throttle answers them."""

from __future__ import annotations

from typing import Awaitable, Callable

from tests.support.api import Api, Result, error_code
from tests.support.codes import wrong_code

Attempt = Callable[[str], Awaitable[Result]]  # sends one code, answers the result


def verifying(api: Api, token: str) -> Attempt:
    return lambda code: api.verify(token, code)


def with_full_session(api: Api, query: str, token: str) -> Attempt:
    return lambda code: api.gql(query, {"c": code}, token=token)


async def fail(attempt: Attempt, secret: str, times: int) -> list[str | None]:
    """`times` wrong codes; the code of each answer."""
    return [(await attempt(wrong_code(secret))).code for _ in range(times)]


async def fail_password(api: Api, email: str, times: int) -> list[str | None]:
    return [(await api.login(email, "wrong-password")).code for _ in range(times)]


def retry_after(result: Result) -> int:
    """The delay of a RATE_LIMITED answer (which carries no data)."""
    assert error_code(result, "RATE_LIMITED"), result.body
    value = result.errors[0]["extensions"]["retryAfter"]
    assert isinstance(value, int) and value >= 1, result.body
    return value


def waited(result: Result, code: str) -> int:
    """The delay a checked, failed attempt starts: answered as checked (its own code), with
    `retryAfter` for the next attempt."""
    assert error_code(result, code), result.body
    value = result.errors[0]["extensions"]["retryAfter"]
    assert isinstance(value, int) and value >= 1, result.body
    return value
