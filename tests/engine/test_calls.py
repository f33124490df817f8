"""Calls to the built-in extensions, end to end over loopback, with measured audio.

A raw SIP UAC with its own RTP peer calls `echo` and `tone`: the tone it sends comes back
from `echo`, `tone` sends 1 kHz; BYE works from both sides, an unacknowledged 2xx ends in a
BYE, stopping the engine hangs up with BYE; SIPp's own `uac` scenario places 100 calls.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import zlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from callcenter.engine.media import MediaClock, RtpPortPool
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import detect_tone, dominant_frequency
from callcenter.sip import Request, parse_message
from callcenter.sip.sdp import parse_sdp
from callcenter.sip.transaction import TimerConfig

from .rtp_peer import RtpPeer
from .sip_client import Reply, UdpClient


def free_base(span: int = 200) -> int:
    """An even port with `span` ports after it that were free a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1]) & ~1
        if base + span < 65535:
            return base
    raise RuntimeError("no port range")


# Calls in these tests come from 127.0.0.1, a trusted trunk (no digest).
LOOPBACK = Trunks([Trunk.build("loopback", ["127.0.0.1/32"])])


def make_endpoint(timers: TimerConfig | None = None) -> SipEndpoint:
    base = free_base()
    pool = RtpPortPool("127.0.0.1", base, base + 199)
    config = EndpointConfig(host="127.0.0.1", port=0)
    if timers is not None:
        config = EndpointConfig(host="127.0.0.1", port=0, timers=timers)
    return SipEndpoint(config, media=(pool, MediaClock()), trunks=LOOPBACK)


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    server = make_endpoint()
    await server.start()
    yield server
    await server.stop()


class Uac:
    """Just enough of a SIP phone to place one call: INVITE, ACK, BYE, and answer a BYE."""

    def __init__(self, sip: UdpClient, rtp: RtpPeer, server_port: int, target: str) -> None:
        self.sip, self.rtp, self.server_port, self.target = sip, rtp, server_port, target
        self.call_id = f"call-{target}-{sip.port}@127.0.0.1"
        self.ok: Reply | None = None

    def sdp(self, version: int = 1, direction: str = "sendrecv") -> bytes:
        return (
            f"v=0\r\no=uac 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\nm=audio {self.rtp.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
            f"a={direction}\r\n"
        ).encode()

    def invite(self) -> bytes:
        return self._request("INVITE", 1, "", body=self.sdp())

    async def reinvite(self, cseq: int, direction: str) -> str:
        """Re-INVITE in the dialog with `direction`; returns the direction we were answered."""
        assert self.ok is not None
        tag = self.ok.response.to_tag or ""
        data = self._request("INVITE", cseq, tag, body=self.sdp(cseq, direction))
        reply = await self.sip.request(data, self.server_port)
        assert reply is not None and reply.status == 200, reply
        self.sip.send(self._request("ACK", cseq, tag), self.server_port)
        answer = parse_sdp(reply.response.body)
        return answer.direction_of(answer.media[0]).value

    def _request(self, method: str, cseq: int, to_tag: str, body: bytes = b"") -> bytes:
        to = f"<sip:{self.target}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        # Unique per request (RFC 3261 8.1.1.7), or a new INVITE would match the last one.
        branch = f"z9hG4bK{method}{cseq}-{zlib.crc32(self.call_id.encode())}"
        head = (
            f"{method} sip:{self.target}@127.0.0.1:{self.server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip.port};branch={branch};rport\r\n"
            f"From: <sip:uac@127.0.0.1>;tag=uac1\r\nTo: {to}\r\nCall-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:uac@127.0.0.1:{self.sip.port}>\r\n"
            "Max-Forwards: 70\r\n"
        )
        if body:
            head += "Content-Type: application/sdp\r\n"
        return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def call(self) -> int:
        """INVITE until a final response; returns the engine's RTP port."""
        self.sip.send(self.invite(), self.server_port)
        while True:
            reply = await self.sip.receive(timeout=5)
            assert reply is not None, "no final response to INVITE"
            if reply.status >= 200:
                break
        assert reply.status == 200, reply.data
        self.ok = reply
        answer = parse_sdp(reply.response.body)
        return answer.media[0].port

    def ack(self) -> None:
        assert self.ok is not None
        self.sip.send(self._request("ACK", 1, self.ok.response.to_tag or ""), self.server_port)

    async def bye(self) -> Reply | None:
        assert self.ok is not None
        return await self.sip.request(
            self._request("BYE", 2, self.ok.response.to_tag or ""), self.server_port
        )


async def _uac(endpoint: SipEndpoint, target: str) -> Uac:
    return Uac(await UdpClient.open(), await RtpPeer.open(), endpoint.port, target)


@pytest.mark.asyncio
async def test_echo_returns_the_callers_tone(endpoint: SipEndpoint) -> None:
    uac = await _uac(endpoint, "echo")
    try:
        media_port = await uac.call()
        uac.ack()
        uac.rtp.send_tone(media_port, 1000.0, 1.5)
        await asyncio.sleep(1.8)
        audio = uac.rtp.audio()
        assert len(audio) > 8000 * 0.8, "less than 0.8 s of audio came back"
        assert abs(dominant_frequency(audio[-4000:]) - 1000.0) < 20
        assert detect_tone(audio[-4000:], 1000.0)
        bye = await uac.bye()
        assert bye is not None and bye.status == 200
        assert endpoint.calls is not None and endpoint.calls.active == 0
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_tone_extension_sends_1khz(endpoint: SipEndpoint) -> None:
    uac = await _uac(endpoint, "tone")
    try:
        media_port = await uac.call()
        uac.ack()
        uac.rtp.send_tone(media_port, None, 1.0)  # silence, so the source latches
        await asyncio.sleep(1.2)
        audio = uac.rtp.audio()
        assert len(audio) > 8000 * 0.6
        assert abs(dominant_frequency(audio) - 1000.0) < 20
        assert not detect_tone(audio, 700.0)
    finally:
        await uac.bye()
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_unknown_extension_is_404_and_a_late_offer_is_answered_in_the_ack(
    endpoint: SipEndpoint,
) -> None:
    uac = await _uac(endpoint, "nobody")
    try:
        reply = await uac.sip.request(uac.invite(), endpoint.port)
        assert reply is not None and reply.status == 404
        # RFC 3261 §13.2.1: no SDP in the INVITE, so the 200 carries the engine's offer and
        # the ACK our answer; then the echo works as usual.
        late = Uac(uac.sip, uac.rtp, endpoint.port, "echo")
        late.call_id = "late-offer@127.0.0.1"
        ok = await uac.sip.request(late._request("INVITE", 1, ""), endpoint.port)
        while ok is not None and ok.status < 200:
            ok = await uac.sip.receive()
        assert ok is not None and ok.status == 200
        offer = parse_sdp(ok.response.body)
        engine_port = offer.media[0].port
        late.ok = ok
        tag = ok.response.to_tag or ""
        uac.sip.send(late._request("ACK", 1, tag, body=late.sdp()), endpoint.port)
        await uac.rtp.send_tone(engine_port, 1000.0, 1.0)
        await asyncio.sleep(0.2)
        assert detect_tone(uac.rtp.audio()[-2400:], 1000.0)
        bye = await late.bye()
        assert bye is not None and bye.status == 200
        # A late offer whose ACK brings no answer leaves no session: the engine hangs up.
        empty = Uac(uac.sip, uac.rtp, endpoint.port, "echo")
        empty.call_id = "late-offer-no-answer@127.0.0.1"
        ok = await uac.sip.request(empty._request("INVITE", 1, ""), endpoint.port)
        while ok is not None and ok.status < 200:
            ok = await uac.sip.receive()
        assert ok is not None and ok.status == 200
        uac.sip.send(empty._request("ACK", 1, ok.response.to_tag or ""), endpoint.port)
        data = await asyncio.wait_for(uac.sip.collector.queue.get(), 2)
        assert data.startswith(b"BYE "), data[:40]
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_engine_stop_hangs_up_with_bye() -> None:
    server = make_endpoint()
    await server.start()
    uac = await _uac(server, "echo")
    try:
        await uac.call()
        uac.ack()
        await asyncio.sleep(0.1)
        stopping = asyncio.create_task(server.stop())
        bye = await uac.sip.collector.queue.get()
        request = parse_message(bye)
        assert isinstance(request, Request) and request.method == "BYE"
        assert request.call_id == uac.call_id
        await stopping
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_unacknowledged_2xx_is_retransmitted_then_hung_up() -> None:
    # T1 = 50 ms: 64*T1 = 3.2 s without ACK, then BYE.
    server = make_endpoint(TimerConfig(t1=0.05, t2=0.4, t4=0.5))
    await server.start()
    uac = await _uac(server, "echo")
    try:
        await uac.call()
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 6
        while loop.time() < deadline and "BYE" not in seen:
            data = await asyncio.wait_for(uac.sip.collector.queue.get(), 6)
            seen.append("BYE" if data.startswith(b"BYE ") else data.split(b" ", 2)[1].decode())
        assert seen.count("200") >= 4, seen  # the 2xx came again and again
        assert seen[-1] == "BYE"
        assert server.calls is not None and server.calls.active == 0
    finally:
        await server.stop()
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_sipp_uac_100_sequential_calls(endpoint: SipEndpoint) -> None:
    sipp = shutil.which("sipp")
    assert sipp is not None, "sipp not found: run `make test` as root to install sip-tester"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sipp,
        f"127.0.0.1:{endpoint.port}",
        "-sn",
        "uac",
        "-s",
        "echo",
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-m",
        "100",
        "-l",
        "1",
        "-d",
        "0",
        "-timeout",
        "60s",
        "-timeout_error",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    assert endpoint.calls is not None and endpoint.calls.active == 0


@pytest.mark.asyncio
async def test_hold_and_resume_by_reinvite(endpoint: SipEndpoint) -> None:
    uac = await _uac(endpoint, "echo")
    try:
        media_port = await uac.call()
        uac.ack()
        uac.rtp.send_tone(media_port, 1000.0, 0.6)
        await asyncio.sleep(0.8)
        assert len(uac.rtp.received) > 10
        # Hold (RFC 3264 §8.4): we offer sendonly, the engine answers recvonly and stops sending.
        assert await uac.reinvite(3, "sendonly") == "recvonly"
        await asyncio.sleep(0.2)
        before_hold = len(uac.rtp.received)
        uac.rtp.send_tone(media_port, 1000.0, 0.6)
        await asyncio.sleep(0.8)
        assert len(uac.rtp.received) - before_hold <= 2, "the engine kept sending while held"
        # Resume: sendrecv again, and the echo comes back.
        assert await uac.reinvite(4, "sendrecv") == "sendrecv"
        resumed = len(uac.rtp.received)
        uac.rtp.send_tone(media_port, 1000.0, 1.0)
        await asyncio.sleep(1.2)
        audio = uac.rtp.audio()[resumed * 160 :]
        assert len(audio) > 8000 * 0.5
        assert abs(dominant_frequency(audio[-3000:]) - 1000.0) < 20
    finally:
        await uac.bye()
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_reinvite_without_sdp_gets_our_offer_and_the_ack_answers_it(
    endpoint: SipEndpoint,
) -> None:
    """RFC 3261 §14.2: an offerless re-INVITE is answered with our session offered again
    (same o= id, higher version); the ACK carries the answer, here a hold (sendonly)."""
    uac = await _uac(endpoint, "echo")
    try:
        media_port = await uac.call()
        uac.ack()
        assert uac.ok is not None
        first = parse_sdp(uac.ok.response.body).origin
        tag = uac.ok.response.to_tag or ""
        reply = await uac.sip.request(uac._request("INVITE", 3, tag), endpoint.port)
        assert reply is not None and reply.status == 200
        offer = parse_sdp(reply.response.body)
        assert offer.origin.sess_id == first.sess_id
        assert offer.origin.sess_version > first.sess_version
        uac.sip.send(uac._request("ACK", 3, tag, body=uac.sdp(3, "sendonly")), endpoint.port)
        await asyncio.sleep(0.2)
        before = len(uac.rtp.received)
        uac.rtp.send_tone(media_port, 1000.0, 0.6)
        await asyncio.sleep(0.8)
        assert len(uac.rtp.received) - before <= 2, "the engine kept sending while held"
    finally:
        await uac.bye()
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_media_timeout_hangs_up_a_silent_call_but_not_a_held_one() -> None:
    base = free_base()
    config = EndpointConfig(host="127.0.0.1", port=0, media_timeout=1.0)
    server = SipEndpoint(
        config, media=(RtpPortPool("127.0.0.1", base, base + 199), MediaClock()), trunks=LOOPBACK
    )
    await server.start()
    silent, held = await _uac(server, "echo"), await _uac(server, "tone")
    try:
        await silent.call()
        silent.ack()
        await held.call()
        held.ack()
        assert await held.reinvite(3, "inactive") == "inactive"
        request = parse_message(await asyncio.wait_for(silent.sip.collector.queue.get(), 5))
        assert isinstance(request, Request) and request.method == "BYE"
        assert request.call_id == silent.call_id
        assert held.sip.collector.queue.empty(), "a held call must not time out"
        assert server.calls is not None and server.calls.active == 1
    finally:
        await server.stop()
        for uac in (silent, held):
            uac.sip.close()
            uac.rtp.close()
