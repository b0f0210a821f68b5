"""The client's IP address: the connection's peer, or, behind trusted reverse proxies only,
the right-most address of X-Forwarded-For that is not one of those proxies.

Each proxy appends the address it received the request from, so the entries right of the
first untrusted one were written by trusted proxies, and everything left of it by whoever
sent the request (a client can put any address there). The left-most entry is therefore never
trusted on its own: it is used only when every hop in the header is a trusted proxy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from starlette.requests import Request

Address = IPv4Address | IPv6Address
UNKNOWN = "unknown"  # no peer address (e.g. a test transport): one shared bucket


def _parse(text: str) -> Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


class ClientAddress:
    """Resolves the client IP of a request, given the trusted proxies (IPs or CIDRs)."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = tuple(ip_network(p, strict=False) for p in trusted_proxies)

    def trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def of(self, request: Request) -> str:
        peer = _parse(request.client.host) if request.client else None
        if peer is None:
            return request.client.host if request.client else UNKNOWN
        if not self._trusted or not self.trusted(peer):
            return str(peer)
        hops = [h for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
        return str(self.from_forwarded(peer, hops))

    def from_forwarded(self, peer: Address, hops: Sequence[str]) -> Address:
        """Walk X-Forwarded-For from the right while the hop is a trusted proxy. An entry
        that is not an IP address stops the walk at the last valid hop (the proxy that
        relayed it), so a malformed header never yields an identity of the client's choice."""
        client = peer
        for text in reversed(hops):
            hop = _parse(text)
            if hop is None:
                return client
            client = hop
            if not self.trusted(hop):
                return hop
        return client
