"""A tiny SIP test client over real loopback sockets (UDP and TCP)."""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass

from callcenter.sip import Response, SipParseError, parse_message

_counter = itertools.count(1)


def options(port: int, *, local_port: int, transport: str = "UDP", rport: bool = True) -> bytes:
    n = next(_counter)
    via = f"SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bKtest{n}"
    return (
        f"OPTIONS sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: {via}{';rport' if rport else ''}\r\n"
        f"From: <sip:tester@127.0.0.1>;tag=t{n}\r\n"
        f"To: <sip:pbx@127.0.0.1>\r\n"
        f"Call-ID: options-{n}@127.0.0.1\r\n"
        f"CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@dataclass(frozen=True)
class Reply:
    """A response as received: the status line always, the parsed message when it parses
    (a 400 echoes the sender's broken headers verbatim, so it may not)."""

    data: bytes
    status: int
    message: Response | None

    @classmethod
    def of(cls, data: bytes) -> Reply:
        status = int(data.split(b" ", 2)[1])
        try:
            message = parse_message(data)
        except SipParseError:
            return cls(data, status, None)
        assert isinstance(message, Response)
        return cls(data, status, message)

    @property
    def response(self) -> Response:
        assert self.message is not None
        return self.message


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)


class UdpClient:
    def __init__(self, transport: asyncio.DatagramTransport, collector: _Collector) -> None:
        self.transport = transport
        self.collector = collector
        self.port = int(transport.get_extra_info("sockname")[1])

    @classmethod
    async def open(cls) -> UdpClient:
        loop = asyncio.get_running_loop()
        transport, collector = await loop.create_datagram_endpoint(
            _Collector, local_addr=("127.0.0.1", 0)
        )
        return cls(transport, collector)

    def send(self, data: bytes, port: int) -> None:
        self.transport.sendto(data, ("127.0.0.1", port))

    async def receive(self, timeout: float = 2.0) -> Reply | None:
        try:
            data = await asyncio.wait_for(self.collector.queue.get(), timeout)
        except TimeoutError:
            return None
        return Reply.of(data)

    async def request(self, data: bytes, port: int, timeout: float = 2.0) -> Reply | None:
        """Send `data` and wait for the reply with the same Call-ID, ignoring others (such as
        the retransmitted final responses of INVITEs we never acknowledged)."""
        self.send(data, port)
        call_id = call_id_of(data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            reply = await self.receive(left)
            if reply is None:
                return None
            if call_id_of(reply.data) == call_id:
                return reply
        return None

    def close(self) -> None:
        self.transport.close()


_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S*)", re.IGNORECASE | re.MULTILINE)


def call_id_of(data: bytes) -> bytes | None:
    """The Call-ID as written, read without the parser (torture files break the parser)."""
    match = _CALL_ID.search(data)
    return match.group(1) if match else None
