"""Accounts, sites and enforcement state: the tree as the caller may see it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Mapping, Optional

import strawberry

from mandate.gql.audit import DEFAULT_PAGE
from mandate.gql.documents import fields_named
from mandate.gql.ids import from_global_id, pk_of, to_global_id
from mandate.gql.loaders import is_loaded, load_ahead, loaded
from mandate.gql.node import Node
from mandate.gql.permissions import CanReadAccount, IsManagerHere, MayRead
from mandate.gql.users import Role, UserNode
from mandate.models.errors import NOT_FOUND, MandateError, bad_input
from mandate.models import reach
from mandate.models.reach import AccountRow, AccountView, Viewer, subtree

if TYPE_CHECKING:
    from mandate.gql.audit import AuditEventConnection
    from mandate.gql.enforcement import ComplianceNode


def not_found() -> MandateError:
    return MandateError(NOT_FOUND, "No such object, or you cannot see it.")


@strawberry.type(name="Site")
class SiteNode(Node):
    name: str
    account_view: strawberry.Private[AccountView]

    @classmethod
    def of(cls, row: Mapping, account_view: AccountView) -> SiteNode:
        return cls(id=to_global_id("Site", row["id"]), name=row["name"], account_view=account_view)

    @strawberry.field
    def account(self) -> AccountNode:
        return AccountNode.of(self.account_view)


@strawberry.type(name="Enforcement")
class EnforcementNode:
    enforced: bool = strawberry.field(description="Effective: set here or on an ancestor.")
    enforced_here: bool = strawberry.field(description="Set on this account itself.")
    changed_at: Optional[datetime] = strawberry.field(description="When this account's own switch last changed.")
    grace_period_hours: int = strawberry.field(
        description="This account's own grace period: hours a user its switch binds may go on without 2FA."
    )
    view: strawberry.Private[AccountView]

    @strawberry.field(description="The nearest account, this one or an ancestor, whose switch is on.")
    def source(self, info: strawberry.Info) -> Optional[AccountNode]:
        # Synchronous when it can be (no source, this account, or an ancestor already loaded):
        # every account of an enforced tree asks for the same few sources.
        source = self.view.source
        if source is None or source.id == self.view.row.id:
            return self._source_node(None)
        seen = loaded(info.context.account_views, source.id)
        if is_loaded(seen):
            return self._source_node(seen)
        return self._load_source(info)

    async def _load_source(self, info: strawberry.Info) -> AccountNode:
        return self._source_node(await info.context.account_views.load(self.view.source.id))

    def _source_node(self, seen: AccountView | None) -> AccountNode | None:
        view = self.view.source_view(seen)
        return AccountNode.of(view) if view is not None else None

    @strawberry.field(description="Who last changed this account's own switch.")
    async def changed_by(self, info: strawberry.Info) -> Optional[UserNode]:
        user_id = self.view.row.changed_by_id
        user = await info.context.users.load(user_id) if user_id is not None else None
        return UserNode.of(user) if user is not None else None


@strawberry.type(name="Account")
class AccountNode(Node):
    name: str
    view: strawberry.Private[AccountView]

    @classmethod
    def of(cls, view: AccountView) -> AccountNode:
        return cls(id=to_global_id("Account", view.row.id), name=view.row.name, view=view)

    @strawberry.field(permission_classes=[CanReadAccount])
    async def parent(self, info: strawberry.Info) -> Optional[AccountNode]:
        parent_id = self.view.row.parent_id
        if parent_id is None or not self.view.shows_tree:
            return None
        parent = await info.context.account_views.load(parent_id)
        return AccountNode.of(parent) if parent is not None and parent.readable else None

    @strawberry.field(permission_classes=[CanReadAccount])
    def children(self, info: strawberry.Info) -> list[AccountNode]:
        # Synchronous when a level above loaded them ahead (see _ahead), unless the request has
        # held the loop long enough to let others in first (the loaded way round breathes).
        if not self.view.shows_tree:
            return []
        viewer = info.context.viewer_if_loaded()
        rows = loaded(info.context.children, self.view.row.id)
        if viewer is not None and is_loaded(rows) and not info.context.work.out_of_breath():
            return self._child_nodes(viewer, rows)
        return self._load_children(info)

    async def _load_children(self, info: strawberry.Info) -> list[AccountNode]:
        viewer = await info.context.viewer()
        nodes = self._child_nodes(viewer, await info.context.children.load(self.view.row.id))
        await _ahead(info, [node.view for node in nodes])
        return nodes

    def _child_nodes(self, viewer: Viewer, rows: list[AccountRow]) -> list[AccountNode]:
        return [AccountNode.of(self.view.below(row, viewer.direct_role(row.id))) for row in rows]

    @strawberry.field(
        permission_classes=[CanReadAccount],
        description="The whole subtree below, flat, parents before children: one request builds a tree.",
    )
    async def descendants(self, info: strawberry.Info) -> list[AccountNode]:
        if not self.view.shows_tree:
            return []
        viewer = await info.context.viewer()
        views = {self.view.row.id: self.view}
        result = []
        for _depth, row in await subtree(self.view.row.id):
            view = views[row.parent_id].below(row, viewer.direct_role(row.id))
            views[row.id] = view
            result.append(AccountNode.of(view))
        await _ahead(info, [node.view for node in result])
        return result

    @strawberry.field(permission_classes=[CanReadAccount])
    def sites(self, info: strawberry.Info) -> list[SiteNode]:
        # Synchronous when a level above loaded them ahead (see _ahead).
        rows = loaded(info.context.sites, self.view.row.id)
        return self._site_nodes(rows) if is_loaded(rows) else self._load_sites(info)

    async def _load_sites(self, info: strawberry.Info) -> list[SiteNode]:
        return self._site_nodes(await info.context.sites.load(self.view.row.id))

    def _site_nodes(self, rows: list[dict]) -> list[SiteNode]:
        return [SiteNode.of(row, self.view) for row in self.view.visible_sites(rows)]

    @strawberry.field(description="The caller's effective role here, if any.")
    def viewer_role(self) -> Optional[Role]:
        return self.view.role

    @strawberry.field(permission_classes=[CanReadAccount])
    def two_factor_enforcement(self) -> EnforcementNode:
        row = self.view.row
        return EnforcementNode(
            enforced=self.view.enforced, enforced_here=row.enforced, changed_at=row.changed_at,
            grace_period_hours=row.grace_period_hours, view=self.view,
        )

    @strawberry.field(permission_classes=[CanReadAccount, IsManagerHere])
    async def two_factor_compliance(self) -> Annotated["ComplianceNode", strawberry.lazy("mandate.gql.enforcement")]:
        from mandate.gql.enforcement import ComplianceNode

        return ComplianceNode(account_id=self.view.row.id)

    @strawberry.field(
        permission_classes=[CanReadAccount, IsManagerHere],
        description="This account's audit log, newest first.",
    )
    async def audit_events(
        self, first: Optional[int] = DEFAULT_PAGE, after: Optional[str] = None
    ) -> Annotated["AuditEventConnection", strawberry.lazy("mandate.gql.audit")]:
        from mandate.gql.audit import AuditEventConnection

        return await AuditEventConnection.page(self.view.row.id, first, after)


async def _ahead(info: strawberry.Info, views: list[AccountView]) -> None:
    """Load now what the document will ask of these accounts (a list field's) and of the levels
    below them: each level's sites, and its children, in one batch per level, so that each
    account's `sites` and `children` resolve without a wait; the statements are those the
    levels' DataLoaders would batch anyway. Children are loaded only below accounts that show
    their tree, and the loop's other callers get their turn between levels (gql/limits.py)."""
    # (graphql-core's resolve info: strawberry's public `selected_fields` expands every path
    # through the fragments, which a few lines of fragments make exponential)
    raw = info._raw_info
    selection_sets = [node.selection_set for node in raw.field_nodes if node.selection_set]
    sites_of_level = [view.row.id for view in views]
    parents = [view.row.id for view in views if view.shows_tree]  # below them, all show theirs
    work = info.context.work
    while sites_of_level and selection_sets:
        if fields_named(raw.fragments, selection_sets, "sites"):
            await load_ahead(info.context.sites, sites_of_level)
        await work.breathe()
        children = fields_named(raw.fragments, selection_sets, "children")
        if not children or not parents or work.objects + len(sites_of_level) > work.max_objects:
            return  # (an answer already past the object limit loads nothing more: gql/limits.py)
        sites_of_level = parents = [row.id for rows in await load_ahead(info.context.children, parents) for row in rows]
        selection_sets = [node.selection_set for node in children if node.selection_set]


async def reachable_account(info: strawberry.Info, account_id: int) -> AccountView:
    view = await (await info.context.viewer()).view(account_id)
    if view is None:
        raise not_found()
    return view


@strawberry.type
class AccountQueries:
    @strawberry.field(permission_classes=[MayRead], description="The tops of the trees the caller can reach.")
    async def accounts(self, info: strawberry.Info) -> list[AccountNode]:
        nodes = [AccountNode.of(view) for view in await (await info.context.viewer()).tops()]
        await _ahead(info, [node.view for node in nodes])
        return nodes

    @strawberry.field(permission_classes=[MayRead])
    async def account(self, info: strawberry.Info, id: strawberry.ID) -> Optional[AccountNode]:
        return AccountNode.of(await reachable_account(info, pk_of(id, "Account", "id")))

    @strawberry.field(permission_classes=[MayRead])
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Optional[Node]:
        type_name, pk = from_global_id(id)
        if type_name == "Account":
            return AccountNode.of(await reachable_account(info, pk))
        if type_name == "Site":
            site = await reach.site(pk)
            view = await (await info.context.viewer()).site_view(site) if site is not None else None
            if view is None:
                raise not_found()
            return SiteNode.of(site, view)
        if type_name == "User":
            user = info.context.caller.own_user(pk)
            if user is None:
                raise not_found()
            return UserNode.of(user)
        raise bad_input("That is not a valid id.", "id")
