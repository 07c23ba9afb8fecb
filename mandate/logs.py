"""Logs as JSON lines on stderr, one object a line: a line per request (gql/observability.py)
and the incidents (warnings, errors with their trace). `mandate serve` sets this up in every
server process, in place of uvicorn's own formats; uvicorn's access log is off, since the
request lines replace it.

Nothing secret is ever given to a logger: request lines carry ids, names and codes, never a
body, a header's value, a token, a password or a code.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson

REQUEST_LOGGER = "mandate.request"

# Our lines name no thread or process, and finding them (os.getpid is a system call, the
# multiprocessing lookup is slow) cost more than the rest of a request's line.
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


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
            line["exc"] = self.formatException(record.exc_info)
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
