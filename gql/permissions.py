"""The guards, one class per check, attached to the fields they guard.

Each raises a MandateError with its API.md code; the order of a field's classes is the order
of its checks (for setEnforcement: a full session, then management, then one's own 2FA).
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from mandate.gql.ids import pk_of
from mandate.models.enforcement import require_manager, require_own_two_factor
from mandate.models.errors import (
    ENROLMENT_REQUIRED,
    FORBIDDEN,
    TWO_FACTOR_REQUIRED,
    UNAUTHENTICATED,
    MandateError,
)
from mandate.models.sessions import Access

_CODE_FOR_ACCESS = {
    Access.ANONYMOUS: UNAUTHENTICATED,
    Access.PASSWORD_ONLY: TWO_FACTOR_REQUIRED,
    Access.ENROLMENT_ONLY: ENROLMENT_REQUIRED,
}


class Guard(BasePermission):
    """A permission whose check raises the right MandateError itself."""

    message = "You are not allowed to do that."
    error_extensions = {"code": FORBIDDEN}

    async def check(self, source: Any, info: Info, **kwargs: Any) -> None:
        raise NotImplementedError

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await self.check(source, info, **kwargs)
        return True


class SourceGuard(BasePermission):
    """A guard that decides from the object alone, without awaiting: a field under only such
    guards resolves synchronously, which matters on the thousands of objects of a tree."""

    message = Guard.message
    error_extensions = Guard.error_extensions

    def check(self, source: Any, info: Info, **kwargs: Any) -> None:
        raise NotImplementedError

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        self.check(source, info, **kwargs)
        return True


def _refuse(access: Access) -> MandateError:
    return MandateError(_CODE_FOR_ACCESS.get(access, FORBIDDEN))


class HasSession(Guard):
    """Any live token, whatever its kind (logout)."""

    error_extensions = {"code": UNAUTHENTICATED}

    async def check(self, source, info, **kwargs):
        await info.context.require_session()


class IsFullSession(Guard):
    """A session that passed every step its user needs."""

    async def check(self, source, info, **kwargs):
        access = await info.context.access()
        if access is not Access.FULL:
            raise _refuse(access)


class MayEnrol(Guard):
    """Enrolment-only tokens, and full sessions (setting 2FA up voluntarily)."""

    async def check(self, source, info, **kwargs):
        access = await info.context.access()
        if access not in (Access.FULL, Access.ENROLMENT_ONLY):
            raise _refuse(access)


class IsPasswordOnlySession(Guard):
    """The token of a login waiting for its second factor."""

    async def check(self, source, info, **kwargs):
        access = await info.context.access()
        if access is Access.FULL:
            raise MandateError(FORBIDDEN, "This session has already passed its second factor.")
        if access is not Access.PASSWORD_ONLY:
            raise _refuse(access)


class ManagesAccount(Guard):
    """The caller manages the account named by `accountId` (any other account: FORBIDDEN)."""

    async def check(self, source, info, **kwargs):
        account_id = pk_of(kwargs["account_id"], "Account", "accountId")
        view = await (await info.context.viewer()).view(account_id)
        require_manager(view)


class HasOwnTwoFactor(Guard):
    """The caller's own login has 2FA on, and this session passed it."""

    async def check(self, source, info, **kwargs):
        session = await info.context.require_session()
        require_own_two_factor(session.user, session)


class CanReadAccount(SourceGuard):
    """Beyond id and name, an account shown only as an enforcement source is closed."""

    def check(self, source, info, **kwargs):
        if not source.view.readable:
            raise MandateError(FORBIDDEN, "You have no role on that account.")


class IsManagerHere(SourceGuard):
    def check(self, source, info, **kwargs):
        if not source.view.is_manager:
            raise MandateError(FORBIDDEN, "Only managers of this account may read that.")


class IsSelf(Guard):
    async def check(self, source, info, **kwargs):
        session = await info.context.require_session()
        if source.pk != session.user_id:
            raise MandateError(FORBIDDEN, "Only the user themself may read that.")


class CanSeeTwoFactorStatus(Guard):
    """The user themself, or a manager who reached the user through an account they manage."""

    async def check(self, source, info, **kwargs):
        if source.seen_by_manager:
            return
        session = await info.context.require_session()
        if source.pk != session.user_id:
            raise MandateError(FORBIDDEN, "Only the user and their managers may read that.")
