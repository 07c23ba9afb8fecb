"""`mandate rotate-key`: every stored TOTP secret re-encrypted under the first key of
MANDATE_SECRET_KEY, in one transaction, audited with no actor."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from mandate.models import audit, clock, crypto
from mandate.models.tables import Session, TotpDevice


class SecretsUnreadable(Exception):
    """Some stored TOTP secrets decrypt under none of the configured keys."""

    def __init__(self, user_ids: list[int]) -> None:
        super().__init__(user_ids)
        self.user_ids = user_ids


@dataclass(frozen=True)
class Rotation:
    users: int     # users whose secrets were re-encrypted
    secrets: int   # secrets re-encrypted (a confirmed one, and each session's pending one)
    skipped: int   # users whose secrets a request changed meanwhile (already under the server's keys)


async def reencrypt_totp_secrets() -> Rotation:
    """Re-encrypt every stored TOTP secret, the devices' and the sessions' pending ones, under
    the first key of MANDATE_SECRET_KEY, in one transaction. Refuses, writing nothing, when any
    secret decrypts under none of the keys. Each row is written only if it still holds what was
    read, so a confirmation racing the rotation is never undone."""
    cipher = crypto.cipher()

    def rotated(token: str) -> str:
        return cipher.rotate(token.encode()).decode()

    async with in_transaction():
        # An ended session's enrolment can never be confirmed: dropped, not carried to the new key.
        await Session.filter(
            Q(revoked_at__isnull=False) | Q(expires_at__lte=clock.now()), totp_pending_secret__isnull=False
        ).update(totp_pending_secret=None)
        # Where secrets are kept: the devices' confirmed ones, the live sessions' pending ones.
        stored = [
            (TotpDevice, "secret", await TotpDevice.all().order_by("id").values_list("id", "user_id", "secret")),
            (Session, "totp_pending_secret", await Session.filter(totp_pending_secret__isnull=False)
             .order_by("id").values_list("id", "user_id", "totp_pending_secret")),
        ]
        updates, unreadable = [], set()
        for model, column, rows in stored:
            for row_id, user_id, secret in rows:
                try:
                    updates.append((model, column, row_id, user_id, secret, rotated(secret)))
                except InvalidToken:
                    unreadable.add(user_id)
        if unreadable:
            raise SecretsUnreadable(sorted(unreadable))
        written: set[int] = set()
        skipped: set[int] = set()
        secrets = 0
        for model, column, row_id, user_id, secret, new_secret in updates:
            if await model.filter(id=row_id, **{column: secret}).update(**{column: new_secret}):
                written.add(user_id)
                secrets += 1
            else:
                skipped.add(user_id)
        await audit.record(audit.SECRETS_REENCRYPTED)
    return Rotation(len(written), secrets, len(skipped))
