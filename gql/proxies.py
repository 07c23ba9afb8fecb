"""The client address, resolved once per request, before anything reads it.

It is the TCP peer's. Only when the peer is one of MANDATE_TRUSTED_PROXIES does X-Forwarded-For
count: then it is the rightmost address of the header that is not itself a trusted proxy (the
leftmost when all are), and a header with any element that is not an IP address, or with more
than MAX_HOPS of them, is ignored whole. `Forwarded` is never read. The middleware writes the result into `scope["client"]`, so
Starlette's `request.client`, the request log, sessions, the audit log and the throttles all see
one value, and it is always an IP address in its normal form (IPv4-mapped IPv6 as IPv4), at most
39 characters: never a header's text.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Callable

from mandate.config import IPAddress, TrustedProxies

_FORWARDED_FOR = b"x-forwarded-for"
# Real chains are a few hops; a longer header is ignored whole, as a bad one is, so that a client
# cannot make each request parse thousands of addresses.
MAX_HOPS = 32


def ip_of(text: str) -> IPAddress | None:
    """The IP address the text is, IPv4-mapped IPv6 as IPv4; None for anything else. A scope id
    (`fe80::1%eth0`) is refused: it names an interface of the sender, and it has no length limit."""
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


@lru_cache(maxsize=4096)
def peer_address(host: str) -> IPAddress | None:
    """The peer as the server reports it; a link-local IPv6 peer comes with its scope id, dropped."""
    return ip_of(host.partition("%")[0])


def forwarded_for(headers: list[tuple[bytes, bytes]]) -> tuple[IPAddress, ...] | None:
    """The addresses of every X-Forwarded-For header joined, in order; None when there is none,
    or when any element is not an IP address (then none of it can be believed)."""
    values = [value for name, value in headers if name == _FORWARDED_FOR]
    if not values:
        return None
    joined = b",".join(values)
    # The same few chains come again and again, and parsing is the cost; long ones (clients
    # write what they like on the left) are parsed afresh, so the cache stays small.
    return _cached_chain(joined) if len(joined) <= 256 else _chain(joined)


def _chain(joined: bytes) -> tuple[IPAddress, ...] | None:
    if joined.count(b",") >= MAX_HOPS:
        return None
    chain = tuple(ip_of(element.strip()) for element in joined.decode("latin-1").split(","))
    return None if any(address is None for address in chain) else chain  # type: ignore[return-value]


_cached_chain = lru_cache(maxsize=4096)(_chain)


def client_address(
    peer: IPAddress, headers: list[tuple[bytes, bytes]], is_trusted: Callable[[IPAddress], bool]
) -> IPAddress:
    if not is_trusted(peer):
        return peer
    chain = forwarded_for(headers)
    if not chain:
        return peer
    for hop in reversed(chain):
        if not is_trusted(hop):
            return hop
    return chain[0]


class ClientAddress:
    """Pure ASGI, outermost: sets `scope["client"]` to the resolved address (port 0 when it came
    from the header), or None when the peer is not an IP address (a Unix socket)."""

    def __init__(self, app, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted
        self.is_trusted = lru_cache(maxsize=4096)(trusted.__contains__)  # a walk over the networks

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = peer_address(str(client[0])) if client else None
            if peer is None:
                scope["client"] = None
            elif not self.trusted:
                scope["client"] = (str(peer), client[1])
            else:
                address = client_address(peer, scope["headers"], self.is_trusted)
                scope["client"] = (str(address), client[1] if address == peer else 0)
        await self.app(scope, receive, send)
