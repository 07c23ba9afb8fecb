"""The Node interface (Relay global object identification)."""

import strawberry


@strawberry.interface(description="An object with a global id.")
class Node:
    id: strawberry.ID
