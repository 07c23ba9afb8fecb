"""The error codes of API.md, and the one exception the domain raises."""

from __future__ import annotations

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
INVALID_CODE = "INVALID_CODE"
RATE_LIMITED = "RATE_LIMITED"
TWO_FACTOR_SETUP_REQUIRED = "TWO_FACTOR_SETUP_REQUIRED"
TWO_FACTOR_REQUIRED = "TWO_FACTOR_REQUIRED"
ENROLMENT_REQUIRED = "ENROLMENT_REQUIRED"
TWO_FACTOR_ENFORCED = "TWO_FACTOR_ENFORCED"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # the database does not answer (HTTP 503, with retryAfter)
# Transport and validation codes (not in API.md's table; GraphQL-over-HTTP practice).
BAD_REQUEST = "BAD_REQUEST"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

MESSAGES = {
    UNAUTHENTICATED: "Sign in first: no valid session token was given.",
    FORBIDDEN: "You are not allowed to do that.",
    NOT_FOUND: "Not found.",
    INVALID_CREDENTIALS: "Wrong email or password.",
    INVALID_CODE: "That code is wrong, expired or already used.",
    RATE_LIMITED: "Too many failed attempts: wait before trying again.",
    TWO_FACTOR_SETUP_REQUIRED: "Set up two-factor authentication on your own login first.",
    TWO_FACTOR_REQUIRED: "This session has passed the password only: call verifyTwoFactor.",
    ENROLMENT_REQUIRED: "Two-factor authentication is mandatory for you: enrol first.",
    TWO_FACTOR_ENFORCED: "Two-factor authentication is enforced for you and cannot be disabled.",
    QUERY_TOO_COMPLEX: "The document asks for more work than one request may do: ask for less.",
    SERVICE_UNAVAILABLE: "The service cannot reach its database just now: try again shortly.",
}


class MandateError(Exception):
    """An error a client can act on: a stable code, a message for people, extra fields."""

    def __init__(self, code: str, message: str | None = None, **extensions: object) -> None:
        super().__init__(message or MESSAGES.get(code, code))
        self.code = code
        self.message = message or MESSAGES.get(code, code)
        self.extensions = {"code": code, **extensions}


def bad_input(message: str, argument: str | None = None) -> MandateError:
    extra = {"argument": argument} if argument else {}
    return MandateError(BAD_USER_INPUT, message, **extra)
