"""Who is calling, resolved once per request, and what each kind of caller may do.

A request's caller comes from its bearer token in one statement: the live session, its user, and
whether the user is held to enrolment (bound to 2FA without it: rule 2, from their very next
request). Everything after (the GraphQL context, the permission classes, the domain's operations,
the request log) reads that one typed `Caller`.

What a caller may do is data, one table (`RIGHTS`): for each kind, the acts it may perform and the
error code of any other. Rule 2's list of `me` fields an enrolment-only caller reads is
`OWN_IDENTITY_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mandate.models import clock
from mandate.models.binding import bound_ctes
from mandate.models.crypto import digest
from mandate.models.errors import (
    ENROLMENT_REQUIRED,
    FORBIDDEN,
    TWO_FACTOR_REQUIRED,
    TWO_FACTOR_SETUP_REQUIRED,
    UNAUTHENTICATED,
    MandateError,
)
from mandate.models.sql import as_datetime, fetch
from mandate.models.tables import Session, SessionKind, TotpDevice, User

MAX_TOKEN_LENGTH = 200  # ours are 43 characters; anything far longer is no token of ours


class CallerKind(Enum):
    NOBODY = "nobody"                  # no Authorization header
    UNKNOWN = "unknown"                # a header that names no live session
    PASSWORD_ONLY = "password_only"    # passed the password; the second factor is due
    ENROLMENT_ONLY = "enrolment_only"  # bound to 2FA without it: must enrol first (rule 2)
    FULL = "full"                      # a full session without a second factor
    SECOND_FACTOR = "second_factor"    # a full session that passed a second factor


class LoginStatus(Enum):
    """What a token may do, as the API says it (`login`, `verifyTwoFactor`)."""

    AUTHENTICATED = "AUTHENTICATED"
    TWO_FACTOR_REQUIRED = "TWO_FACTOR_REQUIRED"
    ENROLMENT_REQUIRED = "ENROLMENT_REQUIRED"


class Act(Enum):
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


@dataclass(frozen=True)
class Rights:
    may: frozenset[Act]
    refusal: str                                   # the code of any other act
    status: LoginStatus | None                     # as the API names this kind of token
    refusals: dict[Act, tuple[str, str | None]] = field(default_factory=dict)  # (code, message) where it differs


_OWN_SETTINGS = {
    Act.ME, Act.OWN_IDENTITY, Act.READ, Act.ENROL, Act.LOG_OUT, Act.CHANGE_OWN_SECURITY, Act.CHANGE_PASSWORD,
    Act.END_OWN_SESSIONS,
}
_ALREADY_PASSED = (FORBIDDEN, "This session has already passed its second factor.")

RIGHTS: dict[CallerKind, Rights] = {
    CallerKind.NOBODY: Rights(frozenset(), UNAUTHENTICATED, None),
    CallerKind.UNKNOWN: Rights(
        frozenset(), UNAUTHENTICATED, None,
        {act: (UNAUTHENTICATED, "That session token is unknown, expired or revoked.") for act in Act},
    ),
    CallerKind.PASSWORD_ONLY: Rights(
        frozenset({Act.OWN_IDENTITY, Act.VERIFY_SECOND_FACTOR, Act.LOG_OUT}), TWO_FACTOR_REQUIRED,
        LoginStatus.TWO_FACTOR_REQUIRED,
    ),
    CallerKind.ENROLMENT_ONLY: Rights(
        frozenset({Act.ME, Act.OWN_IDENTITY, Act.ENROL, Act.LOG_OUT}), ENROLMENT_REQUIRED,
        LoginStatus.ENROLMENT_REQUIRED,
    ),
    CallerKind.FULL: Rights(
        frozenset(_OWN_SETTINGS), FORBIDDEN, LoginStatus.AUTHENTICATED,
        {Act.MANAGE: (TWO_FACTOR_SETUP_REQUIRED, None), Act.VERIFY_SECOND_FACTOR: _ALREADY_PASSED},
    ),
    CallerKind.SECOND_FACTOR: Rights(
        frozenset(_OWN_SETTINGS | {Act.MANAGE}), FORBIDDEN, LoginStatus.AUTHENTICATED,
        {Act.VERIFY_SECOND_FACTOR: _ALREADY_PASSED},
    ),
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
               CASE WHEN s.kind = '{SessionKind.FULL.value}' AND d.id IS NULL
                    THEN EXISTS (SELECT 1 FROM bound_to_two_factor) ELSE FALSE END AS must_enrol
        FROM caller_session s JOIN users u ON u.id = s.user_id LEFT JOIN totp_devices d ON d.user_id = u.id
    """


_STATEMENT = _statement()


def kind_of_session(session_kind: SessionKind, two_factor_passed: bool, two_factor_on: bool, must_enrol: bool) -> CallerKind:
    """What a live session makes its caller, given its user's 2FA and whether they must enrol."""
    if session_kind is SessionKind.PASSWORD:
        return CallerKind.PASSWORD_ONLY
    if session_kind is SessionKind.ENROLMENT or must_enrol:
        return CallerKind.ENROLMENT_ONLY
    if two_factor_passed and two_factor_on:
        return CallerKind.SECOND_FACTOR
    return CallerKind.FULL


async def resolve(authorization: str | None) -> Caller:
    """The caller behind an Authorization header (None: no header), in one statement at most."""
    if authorization is None:
        return NOBODY
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return UNKNOWN
    rows = await fetch(_STATEMENT, [digest(token), clock.now()])
    if not rows:
        return UNKNOWN
    row = rows[0]
    # Rows as the ORM would have loaded them (tortoise's public `construct`: no second query).
    device = None
    if row["device_id"] is not None:
        device = TotpDevice.construct(
            _saved_in_db=True,
            id=row["device_id"], user_id=row["user_id"], secret=row["device_secret"], last_step=row["device_last_step"],
            confirmed_at=as_datetime(row["device_confirmed_at"]), created_at=as_datetime(row["device_created_at"]),
        )
    user = User.construct(
        _saved_in_db=True,
        id=row["user_id"], email=row["email"], name=row["name"], password_hash=row["password_hash"],
        created_at=as_datetime(row["user_created_at"]), totp_device=device,
    )
    session = Session.construct(
        _saved_in_db=True,
        id=row["id"], user=user, kind=SessionKind(row["kind"]), two_factor_passed=bool(row["two_factor_passed"]),
        created_at=as_datetime(row["created_at"]), expires_at=as_datetime(row["expires_at"]),
        client_address=row["client_address"], user_agent=row["user_agent"],
        totp_pending_secret=row["totp_pending_secret"],
    )
    kind = kind_of_session(session.kind, session.two_factor_passed, user.two_factor_enabled, bool(row["must_enrol"]))
    return Caller(kind, session, user)
