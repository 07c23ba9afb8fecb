"""Serve Mandate or the floor on SQLite, counting the SQL statements SQLite runs (counting pass only).

    python bench/sqlite_counted.py mandate|floor --port PORT     (DATABASE_URL=sqlite://...)

Every SQLite connection the process opens gets a trace callback (sqlite3's, which fires once per
statement SQLite starts, whatever library sent it); GET /__statements answers the count so far
(and the texts of the last
few; ?clear forgets those).
The app itself is the one `mandate serve` or the floor serves, unchanged.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import uvicorn

statements = 0
recent: list[str] = []  # the texts of the last few statements
_connect = sqlite3.connect


def _counted_connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)

    def traced(sql: str) -> None:
        global statements, recent
        if not sql.startswith("--"):  # "-- TRIGGER name": a trigger's body, part of its statement
            statements += 1
            recent = [*recent[-199:], " ".join(sql.split())]

    conn.set_trace_callback(traced)
    return conn


sqlite3.connect = _counted_connect


def counted(app):
    async def asgi(scope, receive, send):
        global recent
        if scope["type"] == "http" and scope["path"] == "/__statements":
            body = json.dumps({"statements": statements, "recent": recent}).encode()
            if scope["query_string"] == b"clear":
                recent = []
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return asgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=["mandate", "floor"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.server == "mandate":
        from mandate.gql.app import create_app

        app = create_app()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from floor import app
    uvicorn.run(counted(app), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
