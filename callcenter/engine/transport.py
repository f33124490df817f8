"""SIP transports on asyncio: UDP datagrams and TCP streams (RFC 3261 §18).

Owns sockets, per-connection framing (the SIP core's StreamFramer), per-connection limits and
idle timeouts. Hands each datagram or framed message to one callback with the `Peer` it came
from, and sends bytes to a `Peer`. Must not know transactions, dialogs or calls: what a message
means is the endpoint's business.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..sip import DEFAULT_LIMITS, Limits, SipParseError
from ..sip.framer import Framed, StreamFramer

log = logging.getLogger(__name__)

# RFC 5626 §4.4.1: the pong to a CRLFCRLF ping on a stream.
PONG = b"\r\n"


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from, and where its responses go back to."""

    transport: str  # "UDP" or "TCP"
    host: str
    port: int
    connection: int | None = None  # TCP: the connection the request arrived on

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


DatagramHandler = Callable[[bytes, Peer], None]
StreamHandler = Callable[[Framed, Peer], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: DatagramHandler) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        try:
            self._on_datagram(data, Peer("UDP", host, port))
        except Exception:  # one bad datagram must never stop the listener
            log.exception("unhandled error for a datagram from %s:%d", host, port)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the peer is gone; transactions time out.
        log.debug("UDP error: %s", exc)


class _Connection(asyncio.Protocol):
    def __init__(self, owner: SipTransports, connection_id: int) -> None:
        self._owner = owner
        self.id = connection_id
        self._framer = StreamFramer(owner.limits)
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("TCP", str(host), int(port), self.id)
        self._owner._connections[self.id] = self
        self._arm()

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            # A stream that cannot be framed cannot be resynchronised: close it (RFC 3261 §18.3).
            log.info("closing TCP connection from %s:%d: %s", self.peer.host, self.peer.port, exc)
            self.transport.close()
            return
        for item in items:
            try:
                self._owner.on_framed(item, self.peer)
            except Exception:
                log.exception("unhandled error for a message from %s", self.peer)
        self._arm()

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        # A half-received message (Content-Length promising more, RFC 4475 clerr) gets a short
        # deadline; an idle connection kept for reuse a long one.
        timeout = (
            self._owner.incomplete_timeout if self._framer.pending else self._owner.idle_timeout
        )
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._owner._connections.pop(self.id, None)


class SipTransports:
    """A UDP socket and a TCP listener on one host and port, with `start()` / `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_datagram: DatagramHandler,
        on_framed: StreamHandler,
        limits: Limits = DEFAULT_LIMITS,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        incomplete_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.limits = limits
        self.on_datagram = on_datagram
        self.on_framed = on_framed
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.incomplete_timeout = incomplete_timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._next_id = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self.on_datagram), local_addr=(self.host, self.port)
        )
        self._udp = udp
        # Port 0 asks the OS for a port; TCP then listens on the same number.
        self.port = int(udp.get_extra_info("sockname")[1])
        try:
            self._tcp = await loop.create_server(self._accept, self.host, self.port)
        except OSError:
            udp.close()
            raise

    def _accept(self) -> asyncio.Protocol:
        self._next_id += 1
        connection = _Connection(self, self._next_id)
        if len(self._connections) >= self.max_connections:
            # Refuse by closing at once; the bound keeps a flood from exhausting descriptors.
            loop = asyncio.get_running_loop()
            loop.call_soon(connection._expire)
        return connection

    async def stop(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
        for connection in list(self._connections.values()):
            connection._expire()
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def send(self, data: bytes, peer: Peer) -> bool:
        """Send to `peer`; False when it cannot be sent (the TCP connection is gone)."""
        if peer.transport == "UDP":
            if self._udp is None:
                return False
            self._udp.sendto(data, (peer.host, peer.port))
            return True
        connection = (
            self._connections.get(peer.connection)
            if peer.connection is not None
            else self._connection_to(peer.host, peer.port)
        )
        if connection is None or connection.transport is None or connection.transport.is_closing():
            return False
        connection.transport.write(data)
        return True

    def _connection_to(self, host: str, port: int) -> _Connection | None:
        """The live connection from a phone registered over TCP: requests to it reuse the
        connection it opened (we open none; RFC 5626's idea without its flow tokens)."""
        for connection in self._connections.values():
            if connection.peer is not None and (connection.peer.host, connection.peer.port) == (
                host,
                port,
            ):
                return connection
        return None

    def pong(self, peer: Peer) -> None:
        self.send(PONG, peer)

    def listening(self) -> str:
        return f"SIP: udp+tcp {self.host}:{self.port}"
