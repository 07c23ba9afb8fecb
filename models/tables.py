"""The tortoise models: Mandate's tables. The rules that govern them live beside, one module per area."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from tortoise import fields
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet


class Role(str, Enum):
    MANAGER = "MANAGER"
    MEMBER = "MEMBER"

    @property
    def rank(self) -> int:
        return 2 if self is Role.MANAGER else 1


USER_AGENT_LENGTH = 256  # browsers send about 120 characters; what is past this tells nobody anything


class SessionKind(str, Enum):
    PASSWORD = "password"      # passed the password only: may verify a second factor
    ENROLMENT = "enrolment"    # must enrol before anything else
    FULL = "full"


class ApiTokenScope(str, Enum):
    READ = "READ"      # every query its owner may make
    MANAGE = "MANAGE"  # READ, and what a session that passed the second factor may manage


class Expiring:
    """Credentials that end by expiry or by revocation (sessions, API tokens): which rows are live,
    and which have been dead since a given time, said once for both."""

    @classmethod
    def live(cls, now: datetime, **filters) -> QuerySet:
        return cls.filter(revoked_at=None, expires_at__gt=now, **filters)

    @classmethod
    def dead_before(cls, before: datetime) -> QuerySet:
        return cls.filter(Q(expires_at__lt=before) | Q(revoked_at__lt=before))


class User(Model):
    id = fields.BigIntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=200)
    password_hash = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    totp_device: fields.BackwardOneToOneRelation[TotpDevice]

    class Meta:
        table = "users"

    @property
    def two_factor_enabled(self) -> bool:
        """2FA is on when the user has a (confirmed) TOTP device. Load the user with
        `select_related("totp_device")` (or `"user__totp_device"` from a session)."""
        device = self.totp_device
        if isinstance(device, QuerySet):  # not fetched: never guess "off"
            raise RuntimeError("the user was loaded without select_related('totp_device')")
        return device is not None


# User.two_factor_enabled's rule, for SQL that reads the users table as `u`.
TWO_FACTOR_ENABLED_SQL = "EXISTS (SELECT 1 FROM totp_devices d WHERE d.user_id = u.id)"


class Account(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=200)
    parent: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="children", null=True, on_delete=fields.RESTRICT, db_index=True
    )
    enforced = fields.BooleanField(default=False, db_index=True)
    # Hours a user this switch binds may go on without 2FA from when first seen bound (0: none).
    grace_period_hours = fields.IntField(default=0, db_default=0)
    enforcement_changed_at = fields.DatetimeField(null=True)
    enforcement_changed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "accounts"


class Site(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=200)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="sites", on_delete=fields.CASCADE, db_index=True
    )

    class Meta:
        table = "sites"


class Membership(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="memberships", on_delete=fields.CASCADE, db_index=True
    )
    role = fields.CharEnumField(Role, max_length=16)

    class Meta:
        table = "memberships"
        unique_together = (("user", "account"),)


class SiteMembership(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="site_memberships", on_delete=fields.CASCADE
    )
    site: fields.ForeignKeyRelation[Site] = fields.ForeignKeyField(
        "models.Site", related_name="members", on_delete=fields.CASCADE, db_index=True
    )

    class Meta:
        table = "site_memberships"
        unique_together = (("user", "site"),)


class Session(Expiring, Model):
    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE, db_index=True
    )
    kind = fields.CharEnumField(SessionKind, max_length=16)
    two_factor_passed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    client_address = fields.CharField(max_length=64, null=True)
    # The User-Agent of the login that opened it, cut to USER_AGENT_LENGTH (sessions.py): a
    # note for the user's list of sessions, never used to decide anything.
    user_agent = fields.CharField(max_length=USER_AGENT_LENGTH, null=True)
    # The secret of an enrolment this session started (Fernet, as a device's): only this
    # session can confirm it, and it ends with the session.
    totp_pending_secret = fields.TextField(null=True)

    class Meta:
        table = "sessions"


class ApiToken(Expiring, Model):
    """A user's token for an automation script: stored as its SHA-256 only, acting as its owner
    within its scopes (models/api_tokens.py)."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_tokens", on_delete=fields.CASCADE, db_index=True
    )
    name = fields.CharField(max_length=200)
    token_hash = fields.CharField(max_length=64, unique=True)
    scopes = fields.CharField(max_length=64)  # the scopes as given, in order, space-separated
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"


class GracePeriod(Model):
    """When a user was first seen bound to 2FA without it: their grace runs from here (its rule:
    models/grace.py). Only that user's own requests write the row; it goes when they enrol or are
    seen unbound."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="grace_period", on_delete=fields.CASCADE
    )
    started_at = fields.DatetimeField()

    class Meta:
        table = "grace_periods"


class RecoveryCode(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="recovery_codes", on_delete=fields.CASCADE, db_index=True
    )
    code_hash = fields.CharField(max_length=64, unique=True)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recovery_codes"


class TotpDevice(Model):
    """A user's TOTP device: one per user, from the confirmation of its enrolment (a pending
    enrolment stays on the session that started it). Its rule lives in models/totp.py."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="totp_device", on_delete=fields.CASCADE
    )
    # A Fernet token under MANDATE_SECRET_KEY; never the plain base32 secret.
    secret = fields.TextField()
    # The last 30 s step accepted; a step at or before it is refused.
    last_step = fields.BigIntField(default=0)
    confirmed_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "totp_devices"


class Throttle(Model):
    """Consecutive failures under one key (a user's second factor, an email, a client address)."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=300, unique=True)
    failures = fields.IntField(default=0)
    last_failure_at = fields.DatetimeField(null=True)

    class Meta:
        table = "throttles"


class AuditEvent(Model):
    """Append-only: rows are inserted, never updated or deleted."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    action = fields.CharField(max_length=64)
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, null=True, on_delete=fields.SET_NULL, db_index=True
    )
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    subject: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL, db_index=True
    )
    client_address = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "audit_events"
