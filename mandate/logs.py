"""Logs as JSON lines on stderr, one object a line: a line per request (gql/observability.py)
and the incidents (warnings, errors with their trace). `mandate serve` sets this up in every
server process, in place of uvicorn's own formats; uvicorn's access log is off, since the
request lines replace it.

Nothing secret is ever given to a logger: request lines carry ids, names and codes, never a
body, a header's value, a token, a password or a code. Traces keep their frames and exception
types, but the message only of exceptions that cannot quote what a client sent (`trace`).
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timezone

import orjson

REQUEST_LOGGER = "mandate.request"

# Our lines name no thread or process, and finding them (os.getpid is a system call, the
# multiprocessing lookup is slow) cost more than the rest of a request's line.
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


# Our own exceptions' messages never quote input (nor do the OS's: an address, a file). Any other
# may: tortoise's validators quote the value ("Length of '...'"), PostgreSQL quotes bad input,
# graphql-core quotes variables. Of those, the type (and SQLSTATE) is kept, not the message.
_OWN_PACKAGES = frozenset({"models", "gql", "mandate"})
WITHHELD = "(message withheld: it may quote what a client sent)"


def _exception_line(exc: BaseException) -> str:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(exc, OSError) or kind.__module__.partition(".")[0] in _OWN_PACKAGES:
        return f"{name}: {exc}" if str(exc) else name
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{name} (SQLSTATE {sqlstate}) {WITHHELD}" if isinstance(sqlstate, str) else f"{name} {WITHHELD}"


def trace(exc: BaseException) -> str:
    """The exception and its causes as Python prints them, with each message as above."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    link = ""
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append((exc, link))
        if exc.__cause__ is not None:
            exc, link = exc.__cause__, "The above exception was the direct cause of the following exception:"
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, link = exc.__context__, "During handling of the above exception, another exception occurred:"
        else:
            break
    parts: list[str] = []
    for exc, link in reversed(chain):
        frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)) if exc.__traceback__ else []
        parts.append("".join(["Traceback (most recent call last):\n", *frames]) + _exception_line(exc)
                     if frames else _exception_line(exc))
        if link:
            parts.append(f"\n{link}\n")
    return "\n".join(parts)


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", ...the record's `fields`, "exc"}."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exc"] = trace(record.exc_info[1])
        return orjson.dumps(line, default=str).decode()


def log_config(level: str = "INFO") -> dict:
    """A dictConfig for every logger of the process (uvicorn's included): JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr",
                       "level": level}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's loggers come with handlers of their own in its default config: use ours.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # Their DEBUG lines carry SQL parameters (hashes, encrypted secrets): never below INFO.
            "tortoise": {"level": "INFO"},
            "aiosqlite": {"level": "INFO"},
            "asyncpg": {"level": "INFO"},
        },
    }
