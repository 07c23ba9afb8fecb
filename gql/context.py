"""Per-request state: the caller (resolved once, before execution), their reach, the DataLoaders."""

from __future__ import annotations

from functools import cached_property

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from mandate.config import get_settings
from mandate.gql import loaders
from mandate.gql.limits import Work
from mandate.gql.request_record import current_request
from mandate.models import api_tokens, callers
from mandate.models.callers import Caller
from mandate.models.reach import Viewer
from mandate.models.sessions import IssuedToken, live_sessions


class Context:
    def __init__(self, request: Request, caller: Caller) -> None:
        self.request = request
        self.authorization = request.headers.get("authorization")
        self.client_address = request.client.host if request.client else None
        self.user_agent = request.headers.get("user-agent")  # a note on the sessions a login opens
        self.work = Work(get_settings().max_result_objects)
        self._viewer: Viewer | None = None
        self._caller_ended = False
        self.caller = caller
        current_request().user_id = caller.user_id  # for the log: who sent the request

    @property
    def caller(self) -> Caller:
        return self._caller

    @caller.setter
    def caller(self, caller: Caller) -> None:
        self._caller = caller
        self._viewer = None

    def become(self, issued: IssuedToken) -> None:
        """After a login or its second step, the rest of the document runs as the new token."""
        self.authorization = f"Bearer {issued.token}"
        self.caller = issued.caller

    def caller_ended(self) -> None:
        """The caller's own session or token ended in this mutation (logout, disableTotp, revoking
        it): its answer is still read as the caller who asked, and every mutation after it in the
        document runs as nobody (the guards of root fields ask `caller_now`)."""
        self._caller_ended = True

    def caller_now(self, root_field: bool) -> Caller:
        if root_field and self._caller_ended:
            self._caller_ended = False
            self.caller = callers.UNKNOWN
        return self.caller

    async def refresh(self, token: str | None = None) -> None:
        """After a change of the caller's own state (2FA confirmed: the same token, or the new
        one that replaced it), the rest of the document runs as that token's caller now."""
        if token is not None:
            self.authorization = f"Bearer {token}"
        self.caller = await callers.resolve(self.authorization)

    async def viewer(self) -> Viewer:
        """What the caller reaches; only for a caller who may read (the guards ask first)."""
        if self._viewer is None:
            self.caller.require(callers.Act.READ)
            self._viewer = await Viewer.load(self.caller.user_id)
        return self._viewer

    def viewer_if_loaded(self) -> Viewer | None:
        """The caller's reach when already loaded (by a guarded field before), else None."""
        return self._viewer

    def release(self) -> None:
        """Lets go of what the request loaded (its DataLoaders' rows, the caller's reach) once its
        answer is made. graphql-core's executor, which holds the context, is in a reference cycle
        of its own (its `async_helpers` hold its bound methods), so it is freed only by a garbage
        collection; without this, every tree's rows waited there with it (5,000 objects a tree)."""
        self._viewer = None
        for name in _LOADERS:
            self.__dict__.pop(name, None)

    @cached_property
    def children(self) -> DataLoader:
        return loaders.children()

    @cached_property
    def sites(self) -> DataLoader:
        return loaders.sites()

    @cached_property
    def users(self) -> DataLoader:
        return loaders.users()

    @cached_property
    def bound_to_two_factor(self) -> DataLoader:
        return loaders.bound_to_two_factor()

    @cached_property
    def two_factor_deadlines(self) -> DataLoader:
        return loaders.two_factor_deadlines()

    @cached_property
    def own_sessions(self) -> DataLoader:
        return loaders.own(lambda: live_sessions(self.caller), lambda: self.caller.user_id)

    @cached_property
    def own_api_tokens(self) -> DataLoader:
        return loaders.own(lambda: api_tokens.live(self.caller.user_id), lambda: self.caller.user_id)

    @cached_property
    def account_views(self) -> DataLoader:
        async def load(ids: list[int]):
            views = await (await self.viewer()).views(list(ids))
            return [views.get(i) for i in ids]

        return DataLoader(load)


_LOADERS = tuple(name for name, value in vars(Context).items() if isinstance(value, cached_property))
