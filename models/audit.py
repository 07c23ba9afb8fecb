"""The audit log: append-only rows of who did what to whom, when, from where."""

from __future__ import annotations

from mandate.models import clock
from mandate.models.tables import AuditEvent

ENFORCEMENT_ON = "ENFORCEMENT_ON"
ENFORCEMENT_OFF = "ENFORCEMENT_OFF"
GRACE_PERIOD_CHANGED = "GRACE_PERIOD_CHANGED"  # the switch stayed as it was
TOTP_ENROLMENT_STARTED = "TOTP_ENROLMENT_STARTED"
TOTP_CONFIRMED = "TOTP_CONFIRMED"
TOTP_DISABLED = "TOTP_DISABLED"
TOTP_REPLACEMENT_STARTED = "TOTP_REPLACEMENT_STARTED"  # replaceTotp: a new device pending
TOTP_REPLACED = "TOTP_REPLACED"                        # its confirmation: the new device in use
TWO_FACTOR_RESET = "TWO_FACTOR_RESET"  # a manager's reset; with no actor, the operator's (`mandate user reset-2fa`)
RECOVERY_CODE_USED = "RECOVERY_CODE_USED"
RECOVERY_CODES_REGENERATED = "RECOVERY_CODES_REGENERATED"
SECOND_FACTOR_FAILED = "SECOND_FACTOR_FAILED"
SECOND_FACTOR_THROTTLED = "SECOND_FACTOR_THROTTLED"
API_TOKEN_CREATED = "API_TOKEN_CREATED"
API_TOKEN_REVOKED = "API_TOKEN_REVOKED"  # by the user (revokeApiToken, or the token's own logout)
PASSWORD_CHANGED = "PASSWORD_CHANGED"  # by the user themself (changePassword)
# The operator's command line and `mandate import` (models/user_admin.py, account_admin.py,
# memberships.py, key_rotation.py, credentials.py), with no actor: the system.
USER_CREATED = "USER_CREATED"
USER_DISABLED = "USER_DISABLED"
ACCOUNT_CREATED = "ACCOUNT_CREATED"
ACCOUNT_MOVED = "ACCOUNT_MOVED"
MEMBER_ADDED = "MEMBER_ADDED"
MEMBER_ROLE_CHANGED = "MEMBER_ROLE_CHANGED"
MEMBER_REMOVED = "MEMBER_REMOVED"
SITE_CREATED = "SITE_CREATED"
SITE_MEMBER_ADDED = "SITE_MEMBER_ADDED"
SECRETS_REENCRYPTED = "SECRETS_REENCRYPTED"
PASSWORD_SET_BY_OPERATOR = "PASSWORD_SET_BY_OPERATOR"


async def record(
    action: str,
    *,
    actor_id: int | None = None,
    subject_id: int | None = None,
    account_id: int | None = None,
    client_address: str | None = None,
) -> None:
    await AuditEvent.create(
        at=clock.now(),
        action=action,
        actor_id=actor_id,
        subject_id=subject_id,
        account_id=account_id,
        client_address=client_address,
    )
