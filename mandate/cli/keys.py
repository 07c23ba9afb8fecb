"""`mandate rotate-key`."""

from __future__ import annotations

import argparse

from mandate.cli.shared import EXIT_REFUSED, CommandFailed, run
from mandate.models import key_rotation


def cmd_rotate_key(args: argparse.Namespace, url: str) -> None:
    try:
        rotation = run(url, key_rotation.reencrypt_totp_secrets)
    except key_rotation.SecretsUnreadable as exc:
        shown = ", ".join(map(str, exc.user_ids[:10])) + (", ..." if len(exc.user_ids) > 10 else "")
        raise CommandFailed(
            f"the TOTP secrets of {len(exc.user_ids)} user(s) (ids {shown}) decrypt under no key of "
            "MANDATE_SECRET_KEY: add the key they were encrypted under (nothing was changed)", EXIT_REFUSED,
        ) from None
    print(f"Re-encrypted {rotation.secrets} TOTP secret(s) of {rotation.users} user(s) under the first key "
          "of MANDATE_SECRET_KEY.")
    if rotation.skipped:
        print(f"{rotation.skipped} user(s) changed their 2FA meanwhile and were left as the server wrote them: "
              "run rotate-key again once every server has the new key first.")


def register(commands) -> None:
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every stored TOTP secret under the first key",
        description="Re-encrypt every stored TOTP secret, confirmed or pending, under the first key of "
        "MANDATE_SECRET_KEY (a comma-separated list: the first encrypts, all decrypt), in one "
        "transaction. Refuses, changing nothing, if any secret decrypts under none of the keys.")
    rotate.set_defaults(run=cmd_rotate_key)
