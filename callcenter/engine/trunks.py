"""SIP trunks: the carriers' addresses we take calls from, their numbers, and where calls out go.

Owns matching a request's source address against each trunk's allowlist (IP addresses and
CIDR networks), the per-trunk inbound number mapping (dialled number → extension or user),
and choosing the trunk for a call to an outside number. A trunk is trusted by address only,
as carriers' SIP peering works; everything else must authenticate as a user. Must not know
the database or HTTP: the composition root builds trunks from settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .transport import Peer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class Trunk:
    name: str
    peers: tuple[Network, ...]
    # Dialled number (the Request-URI user part) → extension or user name it rings.
    numbers: Mapping[str, str] = field(default_factory=dict)
    # Where calls to outside numbers go through this trunk (None: inbound only).
    outbound: Peer | None = None

    @classmethod
    def build(
        cls,
        name: str,
        peers: Sequence[str],
        *,
        numbers: Mapping[str, str] | None = None,
        outbound: str | None = None,
    ) -> Trunk:
        """From configuration text; ValueError names what is wrong."""
        networks = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in peers)
        return cls(
            name=name,
            peers=networks,
            numbers=dict(numbers or {}),
            outbound=parse_destination(outbound) if outbound else None,
        )

    def admits(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.peers)


def parse_destination(text: str) -> Peer:
    """`host[:port][;transport=udp|tcp]` → where to send (port 5060 by default)."""
    transport = "UDP"
    base, _, params = text.partition(";")
    for param in params.split(";") if params else ():
        key, _, value = param.partition("=")
        if key.strip().lower() == "transport":
            transport = value.strip().upper()
    if transport not in ("UDP", "TCP"):
        raise ValueError(f"unsupported transport in {text!r}")
    base = base.strip()
    if base.startswith("["):
        host, _, rest = base[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = base.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    port = int(port_text) if port_text else 5060
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {text!r}")
    return Peer(transport, host, port)


class Trunks:
    """The configured trunks, first match wins."""

    def __init__(self, trunks: Sequence[Trunk] = ()) -> None:
        self.trunks = tuple(trunks)

    def __len__(self) -> int:
        return len(self.trunks)

    def match(self, host: str) -> Trunk | None:
        """The trunk whose allowlist holds the source address of a request, if any."""
        for trunk in self.trunks:
            if trunk.admits(host):
                return trunk
        return None

    def outbound(self) -> Trunk | None:
        """The trunk calls to outside numbers go through (the first that has a destination)."""
        return next((t for t in self.trunks if t.outbound is not None), None)
