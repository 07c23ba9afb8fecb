"""`mandate serve` and `mandate migrate`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import shutil
import socket
import sys
import tempfile
from urllib.parse import urlsplit

from mandate import logs
from mandate.cli.shared import EXIT_REFUSED, CommandFailed, apply_migrations, report_migrations
from mandate.config import LOG_LEVELS, Settings, get_settings


def cmd_migrate(args: argparse.Namespace, url: str) -> None:
    report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=False)


def check_serving(settings: Settings) -> None:
    """What production asks of `serve`, before anything is touched."""
    if settings.log_level not in LOG_LEVELS:
        raise CommandFailed(f"MANDATE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}",
                            EXIT_REFUSED)
    if settings.trusted_proxies.invalid:
        raise CommandFailed(
            "MANDATE_TRUSTED_PROXIES must be comma-separated IP addresses or networks (CIDR, e.g. "
            f"10.0.0.0/8), not {', '.join(map(repr, settings.trusted_proxies.invalid))}", EXIT_REFUSED,
        )
    if settings.cors_origins.refused:
        raise CommandFailed(settings.cors_origins.refusal(), EXIT_REFUSED)
    if settings.env != "production":
        return
    if not settings.secret_key_set:
        raise CommandFailed(
            "MANDATE_ENV=production needs MANDATE_SECRET_KEY (the key that encrypts TOTP secrets at rest): "
            "not starting", EXIT_REFUSED,
        )
    if urlsplit(settings.database_url).scheme == "sqlite":
        print("mandate serve: warning: MANDATE_ENV=production on SQLite: one machine, one file; "
              "use PostgreSQL (DATABASE_URL=postgres://...) for production", file=sys.stderr)


def check_address(host: str, port: int) -> None:
    """Bind the address once, as uvicorn will, so that a port in use or a host that is not
    this machine's ends in one line here rather than in uvicorn's log after start-up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandFailed(f"--host {host!r}: {exc.strerror}", EXIT_REFUSED) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and asyncio do
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CommandFailed(f"port {port} on {host} is in use: stop what listens there, or "
                                        "give another with --port", EXIT_REFUSED) from None
                raise CommandFailed(f"cannot listen on {host} port {port}: {exc.strerror}", EXIT_REFUSED) from None


def playground_address(host: str, port: int) -> str:
    """Where a browser on this machine opens the playground."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/graphql"


def cmd_serve(args: argparse.Namespace, url: str) -> None:
    import uvicorn

    settings = get_settings()
    check_serving(settings)
    check_address(args.host, args.port)
    report_migrations(asyncio.run(apply_migrations(url)), quiet_when_none=True)
    print(f"Serving the API and its playground at {playground_address(args.host, args.port)}")
    sys.stdout.flush()  # before the server's own log lines
    shared_metrics = None
    if settings.metrics and args.workers > 1 and not settings.metrics_folder:
        # prometheus-client's multi-process mode: each worker counts into this folder (it reads
        # PROMETHEUS_MULTIPROC_DIR when it starts) and a scrape adds them all up.
        shared_metrics = tempfile.mkdtemp(prefix="mandate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared_metrics
    try:
        # The import string and factory let --workers start the app afresh in each process;
        # uvicorn picks uvloop and httptools by itself when they are installed. Its access log
        # is off: our JSON request lines (gql/observability.py) replace it. Its proxy headers are
        # off, since by default it believes X-Forwarded-For from 127.0.0.1: the app resolves the
        # client address itself, under MANDATE_TRUSTED_PROXIES (gql/proxies.py).
        uvicorn.run(
            "mandate.gql.app:served_app", factory=True, host=args.host, port=args.port, workers=args.workers,
            access_log=False, log_config=logs.log_config(settings.log_level), proxy_headers=False,
        )
    finally:
        if shared_metrics:
            shutil.rmtree(shared_metrics, ignore_errors=True)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _port(value: str) -> int:
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: give 1 to 65535")
    return int(value)


def register(commands) -> None:
    serve = commands.add_parser("serve", help="migrate the database if needed and serve the API",
                                description="Apply pending migrations, then serve the API with uvicorn.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on, 1 to 65535 (default: %(default)s)")
    serve.add_argument("--workers", type=_positive, default=1,
                       help="worker processes (default: %(default)s)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply the database migrations",
                                  description="Apply pending database migrations and list them.")
    migrate.set_defaults(run=cmd_migrate)
