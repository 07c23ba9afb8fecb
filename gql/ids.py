"""Relay global ids: base64 of "Type:pk", opaque to clients."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

import strawberry

from mandate.models.errors import bad_input

TYPES = ("Account", "Site", "User", "ApiToken", "Session")


@lru_cache(maxsize=65536)  # a tree names the same few thousand objects request after request
def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(global_id: str, argument: str = "id") -> tuple[str, int]:
    try:
        decoded = base64.b64decode(global_id.encode("ascii"), validate=True).decode("ascii")
        type_name, _, raw_pk = decoded.partition(":")
        if type_name not in TYPES or not raw_pk.isascii() or not raw_pk.isdigit() or len(raw_pk) > 18:
            raise ValueError
        return type_name, int(raw_pk)
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_input("That is not a valid id.", argument) from None


def pk_of(global_id: str, expected_type: str, argument: str) -> int:
    type_name, pk = from_global_id(global_id, argument)
    if type_name != expected_type:
        raise bad_input(f"Expected the id of a {expected_type}.", argument)
    return pk
