"""A scripted SIP phone for engine tests: registers with digest over UDP, then lets the test
answer each request it receives (ring, answer with SDP on its own RTP peer, refuse, hang up).

It speaks raw SIP on a loopback socket; the independent phones (baresip, pyVoIP, SIPp) are
used where interoperability is the point, this one where a test must control every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

from callcenter.sip import Request, Response, make_response, parse_message
from callcenter.sip.digest import DigestAccount, DigestClient, make_cnonce, parse_challenge
from callcenter.sip.sdp import parse_sdp

from .rtp_peer import RtpPeer
from .sip_client import Reply, UdpClient

_n = itertools.count(1)


def sdp(port: int, *, version: int = 1, direction: str = "sendrecv") -> bytes:
    return (
        f"v=0\r\no=phone 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
        f"a={direction}\r\n"
    ).encode()


class ScriptedPhone:
    def __init__(self, sip: UdpClient, rtp: RtpPeer, user: str, server_port: int) -> None:
        self.sip, self.rtp, self.user, self.server_port = sip, rtp, user, server_port
        self.tag = secrets.token_hex(4)
        self.remote_rtp_port = 0

    @classmethod
    async def open(cls, user: str, server_port: int) -> ScriptedPhone:
        return cls(await UdpClient.open(), await RtpPeer.open(), user, server_port)

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def _register(self, cseq: int, auth: str = "") -> bytes:
        port, local = self.server_port, self.sip.port
        return (
            f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKr{next(_n)}x{local};rport\r\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag=r{local}\r\n"
            f"To: <sip:{self.user}@127.0.0.1>\r\n"
            f"Call-ID: reg-{self.user}-{local}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{self.user}@127.0.0.1:{local}>\r\nExpires: 600\r\n{auth}"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    async def register(self, password: str) -> None:
        first = await self.sip.request(self._register(1), self.server_port)
        assert first is not None and first.status == 401, first
        header = authorization(first.response, self.user, password, "REGISTER", self.server_port)
        ok = await self.sip.request(self._register(2, header), self.server_port)
        assert ok is not None and ok.status == 200, ok

    async def next_request(self, method: str | None = None, timeout: float = 5.0) -> Request:
        """The next request the engine sends us (responses and other methods skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(self.sip.collector.queue.get(), left)
            except TimeoutError:
                break
            message = parse_message(data)
            if isinstance(message, Request) and (method is None or message.method == method):
                return message
        raise AssertionError(f"no {method or 'request'} within {timeout} s")

    def reply(self, request: Request, status: int, *, body: bytes = b"") -> Response:
        response = make_response(request, status, to_tag=None if status == 100 else self.tag)
        if request.method == "INVITE" and status < 300 and status != 100:
            response.headers.add("Contact", f"<sip:{self.user}@127.0.0.1:{self.sip.port}>")
        if body:
            response.set_body(body, "application/sdp")
        self.sip.send(bytes(response), self.server_port)
        return response

    def answer(self, invite: Request) -> None:
        """200 with our SDP; remembers where the engine wants our RTP."""
        self.remote_rtp_port = parse_sdp(invite.body).media[0].port
        self.reply(invite, 200, body=sdp(self.rtp.port))


def authorization(
    challenge: Response, user: str, password: str, method: str, port: int, uri: str | None = None
) -> str:
    """The Authorization header answering `challenge`; `uri` is the Request-URI (an INVITE's
    answer is bound to it), by default the registrar's."""
    realm = parse_challenge(challenge.headers.fields("www-authenticate")[0]).realm  # type: ignore[union-attr]
    client = DigestClient([DigestAccount(realm=realm, username=user, password=password)])
    offered = [parse_challenge(v) for v in challenge.headers.fields("www-authenticate")]
    credentials = client.answer(
        offered,  # type: ignore[arg-type]
        method=method,
        uri=uri or f"sip:127.0.0.1:{port}",
        host=realm,
        cnonce=make_cnonce(),
    )
    assert credentials is not None
    return f"Authorization: {credentials.to_header_value()}\r\n"


async def final(sip: UdpClient, timeout: float = 5.0) -> tuple[list[int], Reply]:
    """Read responses until a final one: (provisional statuses seen, the final reply)."""
    seen: list[int] = []
    while True:
        reply = await sip.receive(timeout=timeout)
        assert reply is not None, f"no final response (saw {seen})"
        if reply.status >= 200:
            return seen, reply
        seen.append(reply.status)
