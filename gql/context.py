"""Per-request state: the caller's session, their reach, and the DataLoaders."""

from __future__ import annotations

from functools import cached_property

from starlette.datastructures import Headers
from starlette.requests import Request
from strawberry.dataloader import DataLoader

from mandate.gql import loaders
from mandate.gql.limits import Work
from mandate.gql.request_record import current_request
from mandate.config import get_settings
from mandate.models.errors import UNAUTHENTICATED, MandateError
from mandate.models.reach import Viewer
from mandate.models.sessions import Access, access_of, authenticate
from mandate.models.tables import Session


def bearer_token(headers: Headers) -> tuple[str | None, bool]:
    """The bearer token of the Authorization header, and whether a header was there but not one."""
    return bearer_of(headers.get("authorization", ""))


def bearer_of(header: str) -> tuple[str | None, bool]:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return token, False
    return None, bool(header)


class Context:
    def __init__(self, request: Request) -> None:
        self.request = request
        self.client_address = request.client.host if request.client else None
        self.token, self.has_bad_header = bearer_token(request.headers)
        self._session: Session | None = None
        self._session_loaded = False
        self._access: Access | None = None
        self._viewer: Viewer | None = None
        self.work = Work(get_settings().max_result_objects)

    async def session(self) -> Session | None:
        """The caller's live session; None without a token; UNAUTHENTICATED for a dead one."""
        if not self._session_loaded:
            self._session = await authenticate(self.token) if self.token else None
            self._session_loaded = True
            current_request().user_id = self._session.user_id if self._session else None  # for the log
        if self._session is None and (self.token or self.has_bad_header):
            raise MandateError(UNAUTHENTICATED, "That session token is unknown, expired or revoked.")
        return self._session

    def forget_session(self, new_token: str | None = None) -> None:
        """After a change of the caller's own state (2FA confirmed), read it afresh; the rest
        of the document runs as the new session when one replaced the old."""
        if new_token is not None:
            self.token = new_token
        self._session_loaded = False
        self._access = None

    async def require_session(self) -> Session:
        session = await self.session()
        if session is None:
            raise MandateError(UNAUTHENTICATED)
        return session

    async def access(self) -> Access:
        if self._access is None:
            self._access = await access_of(await self.session())
        return self._access

    async def viewer(self) -> Viewer:
        if self._viewer is None:
            self._viewer = await Viewer.load((await self.require_session()).user_id)
        return self._viewer

    @cached_property
    def children(self) -> DataLoader:
        return DataLoader(loaders.load_children)

    @cached_property
    def sites(self) -> DataLoader:
        return DataLoader(loaders.load_sites)

    @cached_property
    def users(self) -> DataLoader:
        return DataLoader(loaders.load_users)

    @cached_property
    def bound_to_two_factor(self) -> DataLoader:
        return DataLoader(loaders.load_bound_to_two_factor)

    @cached_property
    def account_views(self) -> DataLoader:
        async def load(ids: list[int]):
            views = await (await self.viewer()).views(list(ids))
            return [views.get(i) for i in ids]

        return DataLoader(load)
