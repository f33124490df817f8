"""The RTP port pool: binds each new leg's UDP socket on a free even port of a range.

Owns the range (even ports for RTP, each odd port above reserved for its RTCP), which ports
our legs hold, and skipping ports that another process has bound (EADDRINUSE). Ports are
handed out round-robin, so a port just released is the last to be reused (late packets
of the old call find nobody). Must not know calls, SDP or codecs beyond passing the codec
registry to the legs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

from ...media import CodecRegistry
from .errors import PortsExhausted
from .leg import RtpLeg

_TOS_EF = 0xB8
"""DSCP EF (46), the voice class: a hint to the network, ignored where not allowed."""

_SKIP = frozenset({errno.EADDRINUSE, errno.EACCES})


class RtpPortPool:
    """Hands out RTP legs on even ports of `low`..`high` on `host`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        low: int = 20000,
        high: int = 20999,
        *,
        registry: CodecRegistry | None = None,
    ) -> None:
        first = low + (low % 2)
        if not 0 < first < high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._ports = range(first, high, 2)  # p + 1 <= high stays free for RTCP
        self._next = 0
        self._in_use: set[int] = set()
        self._registry = registry

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def capacity(self) -> int:
        return len(self._ports)

    async def open_leg(self) -> RtpLeg:
        """A new leg bound on the next free even port; PortsExhausted if there is none."""
        loop = asyncio.get_running_loop()
        ports = self._ports
        count = len(ports)
        for _ in range(count):
            port = ports[self._next]
            self._next = (self._next + 1) % count
            if port in self._in_use:
                continue
            sock = self._bind(port)
            if sock is None:
                continue
            self._in_use.add(port)
            leg = RtpLeg(port, family=self.family, registry=self._registry, on_closed=self._release)
            try:
                await leg._open(loop, sock)
            except BaseException:
                sock.close()
                self._in_use.discard(port)
                raise
            return leg
        raise PortsExhausted(f"no free RTP port in {ports.start}-{ports.stop} on {self.host}")

    def _bind(self, port: int) -> socket.socket | None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            # No SO_REUSEADDR: on UDP it would let two sockets share the port.
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            if exc.errno in _SKIP:
                return None
            raise
        sock.setblocking(False)
        if self.family == socket.AF_INET:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, _TOS_EF)
        return sock

    def _release(self, leg: RtpLeg) -> None:
        self._in_use.discard(leg.port)
