"""The `mandate` command: serve, migrate, import, demo, and the operator's commands (users,
accounts, roles, reports, the audit log, key rotation, cleanup), one module per group, each
with its parser beside its handler; `main.py` assembles them.

Expected failures (a bad file, a refused demo, a database that does not answer) end with a
one-line message on stderr and a non-zero exit code, never a traceback.
"""

from mandate.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
