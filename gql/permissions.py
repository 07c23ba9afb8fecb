"""The guards: thin adapters that ask the domain and hand on its refusal.

The caller is resolved before execution (models/callers.py), so every guard decides at once,
without awaiting: a field under guards resolves synchronously, which matters on the thousands of
objects of a tree. The domain's refusal (a MandateError) carries its API.md code; a field's
guards run in the order given.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from mandate.models.callers import Act
from mandate.models.errors import FORBIDDEN


class Guard(BasePermission):
    """A permission whose check raises the domain's MandateError itself."""

    message = "You are not allowed to do that."
    error_extensions = {"code": FORBIDDEN}

    def check(self, source: Any, info: Info, **kwargs: Any) -> None:
        raise NotImplementedError

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        self.check(source, info, **kwargs)
        return True


class _Allows(Guard):
    act: Act

    def check(self, source, info, **kwargs):
        # A root field (each mutation) asks for the caller as they stand after the mutations before it.
        info.context.caller_now(info.path.prev is None).require(self.act)


def allows(act: Act) -> type[Guard]:
    """The guard of a field that only callers who may perform `act` reach."""
    return type(f"Allows{act.name.title().replace('_', '')}", (_Allows,), {"act": act, "__doc__": act.value})


MayRead = allows(Act.READ)
MayEnrol = allows(Act.ENROL)
MayVerifySecondFactor = allows(Act.VERIFY_SECOND_FACTOR)
MayLogOut = allows(Act.LOG_OUT)
MayChangeOwnSecurity = allows(Act.CHANGE_OWN_SECURITY)
MayManage = allows(Act.MANAGE)
MayCreateApiToken = allows(Act.CREATE_API_TOKEN)
MayRevokeApiToken = allows(Act.REVOKE_API_TOKEN)
MayLogIn = allows(Act.LOG_IN)
MayChangePassword = allows(Act.CHANGE_PASSWORD)
MayEndOwnSessions = allows(Act.END_OWN_SESSIONS)


class ReadsUserField(Guard):
    """A field of a User: who may read which (models/callers.py, `require_to_read_user`)."""

    def check(self, source, info, **kwargs):
        info.context.caller.require_to_read_user(info.python_name, source.pk, seen_by_manager=source.seen_by_manager)


class CanReadAccount(Guard):
    """Beyond id and name, an account shown only as an enforcement source is closed."""

    def check(self, source, info, **kwargs):
        source.view.require_readable()


class IsManagerHere(Guard):
    def check(self, source, info, **kwargs):
        source.view.require_manager()
