"""Who is calling, resolved once per request, and what each kind of caller may do.

A request's caller comes from its bearer token in one statement: the live session, its user, and
whether the user is held to enrolment (bound to 2FA without it and out of grace: rule 2, from
their very next request; the grace rule is models/grace.py's, and recording or forgetting a grace
start is the one write a request may make here); or, for a bearer token with the API tokens'
prefix, the live API token and its owner (a second statement only to note its use, at most once a
LAST_USED_GRANULARITY). Everything after (the GraphQL context, the permission classes, the
domain's operations, the request log) reads that one typed `Caller`.

What a caller may do is data, one table (`RIGHTS`): for each kind, the acts it may perform and the
error code of any other. Rule 2's list of `me` fields an enrolment-only caller reads is
`OWN_IDENTITY_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from tortoise.expressions import Q

from mandate.models import clock, grace
from mandate.models.binding import bound_ctes
from mandate.models.crypto import API_TOKEN_PREFIX, digest
from mandate.models.errors import (
    ENROLMENT_REQUIRED,
    FORBIDDEN,
    TWO_FACTOR_REQUIRED,
    TWO_FACTOR_SETUP_REQUIRED,
    UNAUTHENTICATED,
    MandateError,
)
from mandate.models.grace import HOLDING_GRACE_SQL, Standing
from mandate.models.sql import as_datetime, fetch
from mandate.models.tables import ApiToken, ApiTokenScope, Session, SessionKind, TotpDevice, User

MAX_TOKEN_LENGTH = 200  # ours are 47 (sessions) and 55 (API tokens) characters; anything far longer is no token of ours
# lastUsedAt is written when the stored value is older than this: a script calling a hundred times
# a minute writes it once, and every other request reads its caller in one statement.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class CallerKind(Enum):
    NOBODY = "nobody"                  # no Authorization header
    UNKNOWN = "unknown"                # a header that names no live session
    PASSWORD_ONLY = "password_only"    # passed the password; the second factor is due
    ENROLMENT_ONLY = "enrolment_only"  # bound to 2FA without it: must enrol first (rule 2)
    FULL = "full"                      # a full session without a second factor
    SECOND_FACTOR = "second_factor"    # a full session that passed a second factor
    API_TOKEN_READ = "api_token_read"      # an API token of scope READ: its owner's queries
    API_TOKEN_MANAGE = "api_token_manage"  # scope MANAGE: READ, and MANAGE as a second factor's session


class LoginStatus(Enum):
    """What a token may do, as the API says it (`login`, `verifyTwoFactor`)."""

    AUTHENTICATED = "AUTHENTICATED"
    TWO_FACTOR_REQUIRED = "TWO_FACTOR_REQUIRED"
    ENROLMENT_REQUIRED = "ENROLMENT_REQUIRED"


class Act(Enum):
    LOG_IN = "log in (`login`): anyone but an API token, which is a login of its own"
    ME = "ask who one is (`me`)"
    OWN_IDENTITY = "read rule 2's fields of oneself (in `me`, or in the answer of one's login)"
    READ = "read what one's roles reach"
    VERIFY_SECOND_FACTOR = "complete a login with a second factor"
    ENROL = "set up TOTP"
    LOG_OUT = "end one's own session"
    CHANGE_OWN_SECURITY = "change one's own 2FA"
    # Sessions only (never an API token): they prove the password, or answer for it.
    CHANGE_PASSWORD = "change one's own password, giving the current one"
    END_OWN_SESSIONS = "end any of one's own sessions (`revokeSession`)"
    MANAGE = "act on others' security: switch enforcement, reset a member's 2FA (rule 1)"
    CREATE_API_TOKEN = "issue an API token (a session that passed its second factor only)"
    REVOKE_API_TOKEN = "revoke one of one's own API tokens"


@dataclass(frozen=True)
class Rights:
    may: frozenset[Act]
    refusal: str                                   # the code of any other act
    status: LoginStatus | None                     # as the API names this kind of token
    refusals: dict[Act, tuple[str, str | None]] = field(default_factory=dict)  # (code, message) where it differs


_OWN_SETTINGS = {
    Act.LOG_IN, Act.ME, Act.OWN_IDENTITY, Act.READ, Act.ENROL, Act.LOG_OUT, Act.CHANGE_OWN_SECURITY,
    Act.CHANGE_PASSWORD, Act.END_OWN_SESSIONS, Act.REVOKE_API_TOKEN,
}
_ALREADY_PASSED = (FORBIDDEN, "This session has already passed its second factor.")
# An API token reads as its owner and may end itself or its owner's other tokens; MANAGE adds
# rule 1's acts. Any other mutation (a login, 2FA, a new token) is FORBIDDEN to it.
_API_TOKEN = {Act.ME, Act.OWN_IDENTITY, Act.READ, Act.LOG_OUT, Act.REVOKE_API_TOKEN}
_NOT_FOR_API_TOKENS = {act: (FORBIDDEN, "An API token may not do that: use a session.") for act in Act}

RIGHTS: dict[CallerKind, Rights] = {
    CallerKind.NOBODY: Rights(frozenset({Act.LOG_IN}), UNAUTHENTICATED, None),
    CallerKind.UNKNOWN: Rights(
        frozenset({Act.LOG_IN}), UNAUTHENTICATED, None,
        {act: (UNAUTHENTICATED, "That session token is unknown, expired or revoked.") for act in Act},
    ),
    CallerKind.PASSWORD_ONLY: Rights(
        frozenset({Act.LOG_IN, Act.OWN_IDENTITY, Act.VERIFY_SECOND_FACTOR, Act.LOG_OUT}), TWO_FACTOR_REQUIRED,
        LoginStatus.TWO_FACTOR_REQUIRED,
    ),
    CallerKind.ENROLMENT_ONLY: Rights(
        frozenset({Act.LOG_IN, Act.ME, Act.OWN_IDENTITY, Act.ENROL, Act.LOG_OUT}), ENROLMENT_REQUIRED,
        LoginStatus.ENROLMENT_REQUIRED,
    ),
    CallerKind.FULL: Rights(
        frozenset(_OWN_SETTINGS), FORBIDDEN, LoginStatus.AUTHENTICATED,
        {
            Act.MANAGE: (TWO_FACTOR_SETUP_REQUIRED, None), Act.CREATE_API_TOKEN: (TWO_FACTOR_SETUP_REQUIRED, None),
            Act.VERIFY_SECOND_FACTOR: _ALREADY_PASSED,
        },
    ),
    CallerKind.SECOND_FACTOR: Rights(
        frozenset(_OWN_SETTINGS | {Act.MANAGE, Act.CREATE_API_TOKEN}), FORBIDDEN, LoginStatus.AUTHENTICATED,
        {Act.VERIFY_SECOND_FACTOR: _ALREADY_PASSED},
    ),
    CallerKind.API_TOKEN_READ: Rights(frozenset(_API_TOKEN), FORBIDDEN, None, _NOT_FOR_API_TOKENS),
    CallerKind.API_TOKEN_MANAGE: Rights(frozenset(_API_TOKEN | {Act.MANAGE}), FORBIDDEN, None, _NOT_FOR_API_TOKENS),
}

# Rule 2: the fields of its own `me` an enrolment-only caller reads; every other is refused.
OWN_IDENTITY_FIELDS = frozenset({"id", "email", "name", "two_factor_enabled", "two_factor_required"})


class UserFieldReaders(Enum):
    ANYONE = "anyone who reaches the user"
    USER_AND_MANAGERS = "the user, and managers who reached them through an account they manage"
    USER = "the user themself"


# Who reads each field of a user (a field not listed is read by nobody: a new one must be added).
USER_FIELDS: dict[str, UserFieldReaders] = {
    "id": UserFieldReaders.ANYONE,
    "email": UserFieldReaders.ANYONE,
    "name": UserFieldReaders.ANYONE,
    "two_factor_enabled": UserFieldReaders.USER_AND_MANAGERS,
    "two_factor_required": UserFieldReaders.USER_AND_MANAGERS,
    "recovery_codes_remaining": UserFieldReaders.USER,
    "memberships": UserFieldReaders.USER,
    "api_tokens": UserFieldReaders.USER,
    "two_factor_deadline": UserFieldReaders.USER_AND_MANAGERS,
    "sessions": UserFieldReaders.USER,
}
_NOT_YOURS = {
    UserFieldReaders.USER_AND_MANAGERS: "Only the user and their managers may read that.",
    UserFieldReaders.USER: "Only the user themself may read that.",
}


@dataclass(frozen=True, slots=True)
class Caller:
    kind: CallerKind
    session: Session | None = None
    user: User | None = None
    api_token: ApiToken | None = None  # the caller is this API token (then `session` is None)
    standing: Standing | None = None   # a session caller's standing towards 2FA, as their statement read it

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    def may(self, act: Act) -> bool:
        return act in RIGHTS[self.kind].may

    def refusal(self, act: Act) -> MandateError:
        rights = RIGHTS[self.kind]
        code, message = rights.refusals.get(act, (rights.refusal, None))
        return MandateError(code, message)

    def require(self, act: Act) -> None:
        if not self.may(act):
            raise self.refusal(act)

    def require_to_read_user(self, field_name: str, user_id: int, *, seen_by_manager: bool) -> None:
        """A field of a user: rule 2's few of one's own, else what `USER_FIELDS` lets a full caller
        read (`seen_by_manager`: the user was reached through an account the caller manages)."""
        own = user_id == self.user_id
        if own and field_name in OWN_IDENTITY_FIELDS:
            self.require(Act.OWN_IDENTITY)
            return
        self.require(Act.READ)
        readers = USER_FIELDS.get(field_name)
        if readers is None:
            raise MandateError(FORBIDDEN)
        if own or readers is UserFieldReaders.ANYONE:
            return
        if readers is UserFieldReaders.USER_AND_MANAGERS and seen_by_manager:
            return
        raise MandateError(FORBIDDEN, _NOT_YOURS[readers])

    def own_user(self, user_id: int) -> User | None:
        """A user looked up by id (`node`): only oneself."""
        return self.user if user_id == self.user_id else None


NOBODY = Caller(CallerKind.NOBODY)
UNKNOWN = Caller(CallerKind.UNKNOWN)


def _statement() -> str:
    ctes, uses = bound_ctes("SELECT user_id FROM caller_session")
    assert uses == 3
    return f"""
        WITH RECURSIVE
        caller_session AS (
            SELECT id, user_id, kind, two_factor_passed, created_at, expires_at, client_address, user_agent,
                   totp_pending_secret
            FROM sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?
        ),
        {ctes}
        SELECT s.id, s.user_id, s.kind, s.two_factor_passed, s.created_at, s.expires_at, s.client_address,
               s.user_agent, s.totp_pending_secret, u.email, u.name, u.password_hash, u.created_at AS user_created_at,
               d.id AS device_id, d.secret AS device_secret, d.last_step AS device_last_step,
               d.confirmed_at AS device_confirmed_at, d.created_at AS device_created_at,
               {HOLDING_GRACE_SQL} AS grace_hours, g.started_at AS grace_started_at
        FROM caller_session s JOIN users u ON u.id = s.user_id LEFT JOIN totp_devices d ON d.user_id = u.id
        LEFT JOIN grace_periods g ON g.user_id = u.id
    """


SESSION_CALLER_SQL = _statement()  # the caller of a session token: its two parameters, the token's digest and now


def kind_of_session(session_kind: SessionKind, two_factor_passed: bool, two_factor_on: bool, must_enrol: bool) -> CallerKind:
    """What a live session makes its caller, given its user's 2FA and whether they must enrol now:
    any session of a user held to enrolment is enrolment-only, and an enrolment-only one whose
    user no longer is (switched off, or in grace) has a full session's rights."""
    if session_kind is SessionKind.PASSWORD:
        return CallerKind.PASSWORD_ONLY
    if must_enrol:
        return CallerKind.ENROLMENT_ONLY
    if two_factor_passed and two_factor_on:
        return CallerKind.SECOND_FACTOR
    return CallerKind.FULL


# An API token's caller: the live token and its owner with their device. No enrolment to work
# out: a token is issued only to a user with 2FA, and every token ends when 2FA is removed.
_API_TOKEN_STATEMENT = """
    SELECT t.id AS token_id, t.user_id, t.name AS token_name, t.scopes, t.created_at, t.expires_at, t.last_used_at,
           u.email, u.name, u.password_hash, u.created_at AS user_created_at,
           d.id AS device_id, d.secret AS device_secret, d.last_step AS device_last_step,
           d.confirmed_at AS device_confirmed_at, d.created_at AS device_created_at
    FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN totp_devices d ON d.user_id = u.id
    WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ?
"""


def kind_of_api_token(scopes: list[ApiTokenScope]) -> CallerKind:
    return CallerKind.API_TOKEN_MANAGE if ApiTokenScope.MANAGE in scopes else CallerKind.API_TOKEN_READ


async def resolve(authorization: str | None) -> Caller:
    """The caller behind an Authorization header (None: no header), in one statement at most
    (an API token's: two, once a LAST_USED_GRANULARITY)."""
    if authorization is None:
        return NOBODY
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return UNKNOWN
    if token.startswith(API_TOKEN_PREFIX):
        return await _api_token_caller(token)
    now = clock.now()
    rows = await fetch(SESSION_CALLER_SQL, [digest(token), now])
    if not rows:
        return UNKNOWN
    row = rows[0]
    user = _user_from(row)
    session = Session.construct(
        _saved_in_db=True,
        id=row["id"], user=user, kind=SessionKind(row["kind"]), two_factor_passed=bool(row["two_factor_passed"]),
        created_at=as_datetime(row["created_at"]), expires_at=as_datetime(row["expires_at"]),
        client_address=row["client_address"], user_agent=row["user_agent"],
        totp_pending_secret=row["totp_pending_secret"],
    )
    standing = Standing.from_db(user.two_factor_enabled, row["grace_hours"], row["grace_started_at"])
    standing = await grace.keep(user.id, standing, now)  # a write only when first seen held, or freed
    kind = kind_of_session(session.kind, session.two_factor_passed, user.two_factor_enabled, standing.must_enrol(now))
    return Caller(kind, session, user, standing=standing)


def _user_from(row: dict) -> User:
    """The caller's user with their device, as the ORM would have loaded them (tortoise's public
    `construct`: no second query)."""
    device = None
    if row["device_id"] is not None:
        device = TotpDevice.construct(
            _saved_in_db=True,
            id=row["device_id"], user_id=row["user_id"], secret=row["device_secret"], last_step=row["device_last_step"],
            confirmed_at=as_datetime(row["device_confirmed_at"]), created_at=as_datetime(row["device_created_at"]),
        )
    return User.construct(
        _saved_in_db=True,
        id=row["user_id"], email=row["email"], name=row["name"], password_hash=row["password_hash"],
        created_at=as_datetime(row["user_created_at"]), totp_device=device,
    )


async def _api_token_caller(token: str) -> Caller:
    now = clock.now()
    rows = await fetch(_API_TOKEN_STATEMENT, [digest(token), now])
    if not rows:
        return UNKNOWN
    row = rows[0]
    user = _user_from(row)
    api_token = ApiToken.construct(
        _saved_in_db=True,
        id=row["token_id"], user=user, name=row["token_name"], scopes=row["scopes"],
        created_at=as_datetime(row["created_at"]), expires_at=as_datetime(row["expires_at"]),
        last_used_at=as_datetime(row["last_used_at"]),
    )
    if api_token.last_used_at is None or api_token.last_used_at < now - LAST_USED_GRANULARITY:
        await _note_use(api_token, now)
    return Caller(kind_of_api_token(scopes_of(api_token)), user=user, api_token=api_token)


def scopes_of(api_token: ApiToken) -> list[ApiTokenScope]:
    """The token's scopes, as given at its creation."""
    return [ApiTokenScope(scope) for scope in api_token.scopes.split()]


async def _note_use(api_token: ApiToken, now) -> None:
    """lastUsedAt, conditionally: of racing requests in one granularity, one writes."""
    if await ApiToken.filter(id=api_token.id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_GRANULARITY)
    ).update(last_used_at=now):
        api_token.last_used_at = now
