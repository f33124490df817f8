"""Calls routed to registered phones by user name, back to back through the engine.

A caller from the loopback trunk dials a user; the engine rings the phone the user registered
(a scripted phone here, pyVoIP and baresip in test_bridge_peers.py), relays the ringing, and
bridges the two RTP legs in a room: tones are measured both ways. CANCEL while ringing, a busy
phone, unknown and unregistered users, digest for callers that are not trunks, and the
toll-fraud rule (a trunk's call never goes back out) are covered here.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.cli import migrate
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.engine.media import MediaClock, RtpPortPool
from callcenter.engine.registration import Registrations
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.transport import Peer
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import detect_tone, dominant_frequency, rms_dbfs
from callcenter.services.subscribers import SqlSubscriberDirectory, add_user
from callcenter.settings import Settings
from callcenter.sip.dialog import DialogId
from callcenter.sip.sdp import parse_sdp
from callcenter.sip.transaction import TimerConfig

from .phone import ScriptedPhone, authorization, final, sdp
from .rtp_peer import RtpPeer
from .sip_client import UdpClient
from .test_calls import free_base
from .test_sipp import SCENARIOS, free_port, run_sipp

REALM = "callcenter.test"
SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORD = "s3cret-phone"
USERS = ("alice", "bob", "carol")


@dataclass
class Pbx:
    engine: AsyncEngine
    endpoint: SipEndpoint

    @property
    def port(self) -> int:
        return self.endpoint.port


def make_pbx_endpoint(
    engine: AsyncEngine, trunks: Trunks, *, ports: int = 200, **config: object
) -> SipEndpoint:
    directory = SqlSubscriberDirectory(create_sessionmaker(engine))
    registrations = Registrations(directory, realm=REALM, secret=SECRET)
    base = free_base()
    return SipEndpoint(
        EndpointConfig(host="127.0.0.1", port=0, **config),  # type: ignore[arg-type]
        registrations=registrations,
        media=(RtpPortPool("127.0.0.1", base, base + ports - 1), MediaClock()),
        trunks=trunks,
    )


@pytest_asyncio.fixture
async def database(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(data_dir=tmp_path)
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine).begin() as session:
        for user in USERS:
            await add_user(session, username=user, role="agent", realm=REALM, sip_password=PASSWORD)
    yield engine
    await engine.dispose()


LOOPBACK = Trunks([Trunk.build("loopback", ["127.0.0.1/32"])])


@pytest_asyncio.fixture
async def pbx(database: AsyncEngine) -> AsyncIterator[Pbx]:
    endpoint = make_pbx_endpoint(database, LOOPBACK)
    await endpoint.start()
    yield Pbx(database, endpoint)
    await endpoint.stop()


class Caller:
    """A caller on the trunk side: INVITE with SDP, ACK, BYE, CANCEL, raw."""

    def __init__(
        self, sip: UdpClient, rtp: RtpPeer, server_port: int, target: str, user: str = "uac"
    ) -> None:
        self.sip, self.rtp, self.server_port, self.target = sip, rtp, server_port, target
        self.user = user
        self.call_id = f"bridge-{target}-{sip.port}@127.0.0.1"
        self.to_tag = ""

    @classmethod
    async def open(cls, server_port: int, target: str, user: str = "uac") -> Caller:
        return cls(await UdpClient.open(), await RtpPeer.open(), server_port, target, user)

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def request(
        self, method: str, cseq: int, *, body: bytes = b"", extra: str = "", branch: str = ""
    ) -> bytes:
        to = f"<sip:{self.target}@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        branch = branch or f"z9hG4bK{method}{cseq}-{zlib.crc32(self.call_id.encode())}"
        head = (
            f"{method} sip:{self.target}@127.0.0.1:{self.server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip.port};branch={branch};rport\r\n"
            f"From: <sip:{self.user}@127.0.0.1>;tag=caller1\r\nTo: {to}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@127.0.0.1:{self.sip.port}>\r\nMax-Forwards: 70\r\n{extra}"
        )
        if body:
            head += "Content-Type: application/sdp\r\n"
        return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    def invite(self, cseq: int = 1, extra: str = "") -> None:
        self.sip.send(
            self.request("INVITE", cseq, body=sdp(self.rtp.port), extra=extra), self.server_port
        )

    def ack(self, cseq: int = 1) -> None:
        self.sip.send(self.request("ACK", cseq), self.server_port)


@pytest.mark.asyncio
async def test_call_rings_the_users_phone_and_bridges_audio_both_ways(pbx: Pbx) -> None:
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        assert invite.from_addr.uri.user == "uac"  # type: ignore[union-attr]
        phone.reply(invite, 180)
        await asyncio.sleep(0.2)
        phone.answer(invite)
        provisional, ok = await final(caller.sip)
        assert 180 in provisional and ok.status == 200
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        ack = await phone.next_request("ACK")
        assert ack.call_id == invite.call_id
        engine_port_for_caller = parse_sdp(ok.response.body).media[0].port
        caller.rtp.send_tone(engine_port_for_caller, 700.0, 1.5)
        phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 1.5)
        await asyncio.sleep(1.8)
        heard_by_phone = phone.rtp.audio()[-4000:]
        heard_by_caller = caller.rtp.audio()[-4000:]
        assert abs(dominant_frequency(heard_by_phone) - 700.0) < 20
        assert abs(dominant_frequency(heard_by_caller) - 1300.0) < 20
        assert not detect_tone(heard_by_phone, 1300.0)  # mix-minus: nobody hears themselves
        assert not detect_tone(heard_by_caller, 700.0)
        # The caller hangs up: the phone gets a BYE of its own dialog.
        caller.sip.send(caller.request("BYE", 2), pbx.port)
        bye = await phone.next_request("BYE")
        assert bye.call_id == invite.call_id
        phone.reply(bye, 200)
        assert pbx.endpoint.calls is not None
        await asyncio.sleep(0.1)
        assert pbx.endpoint.calls.active == 0
        assert pbx.endpoint.bridges.active == 0
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_phone_hanging_up_ends_the_callers_call(pbx: Pbx) -> None:
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.answer(invite)
        _, ok = await final(caller.sip)
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        await phone.next_request("ACK")
        to = f"<sip:uac@127.0.0.1>;tag={invite.from_tag}"
        bye = (
            f"BYE sip:callcenter@127.0.0.1:{pbx.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{phone.sip.port};branch=z9hG4bKphonebye;rport\r\n"
            f"From: <sip:bob@127.0.0.1>;tag={phone.tag}\r\nTo: {to}\r\n"
            f"Call-ID: {invite.call_id}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        reply = await phone.sip.request(bye, pbx.port)
        assert reply is not None and reply.status == 200
        data = await asyncio.wait_for(caller.sip.collector.queue.get(), 2)
        assert data.startswith(b"BYE "), data[:40]
        assert pbx.endpoint.calls is not None and pbx.endpoint.calls.active == 0
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_cancel_while_ringing_reaches_the_phone_and_the_caller_gets_487(pbx: Pbx) -> None:
    phone = await ScriptedPhone.open("carol", pbx.port)
    caller = await Caller.open(pbx.port, "carol")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)
        ringing = await caller.sip.receive()
        while ringing is not None and ringing.status == 100:
            ringing = await caller.sip.receive()
        assert ringing is not None and ringing.status == 180
        branch = f"z9hG4bKINVITE1-{zlib.crc32(caller.call_id.encode())}"
        caller.sip.send(caller.request("CANCEL", 1, branch=branch), pbx.port)
        statuses: set[tuple[int, str]] = set()
        for _ in range(2):
            reply = await caller.sip.receive()
            assert reply is not None
            statuses.add((reply.status, reply.response.cseq.method))
        assert statuses == {(200, "CANCEL"), (487, "INVITE")}
        cancel = await phone.next_request("CANCEL")
        assert cancel.call_id == invite.call_id
        phone.reply(cancel, 200)
        phone.reply(invite, 487)
        ack = await phone.next_request("ACK")  # the engine's INVITE transaction ACKs the 487
        assert ack.call_id == invite.call_id
        await asyncio.sleep(0.1)
        assert pbx.endpoint.bridges.active == 0
        assert pbx.endpoint.calls is not None and pbx.endpoint.calls.active == 0
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("phone_says", "caller_hears"), [(486, 486), (603, 603), (404, 480)])
async def test_refusal_is_relayed(pbx: Pbx, phone_says: int, caller_hears: int) -> None:
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)  # an early dialog on both sides first
        await asyncio.sleep(0.1)
        phone.reply(invite, phone_says)
        _, reply = await final(caller.sip)
        assert reply.status == caller_hears
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_ring_timeout_cancels_the_phone_and_tells_the_caller_480(
    database: AsyncEngine,
) -> None:
    endpoint = make_pbx_endpoint(database, LOOPBACK, ring_timeout=0.5)
    await endpoint.start()
    phone = await ScriptedPhone.open("bob", endpoint.port)
    caller = await Caller.open(endpoint.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)
        cancel = await phone.next_request("CANCEL", timeout=3)
        phone.reply(cancel, 200)
        phone.reply(invite, 487)
        provisional, reply = await final(caller.sip)
        assert 180 in provisional and reply.status == 480
    finally:
        phone.close()
        caller.close()
        await endpoint.stop()


@pytest.mark.asyncio
async def test_unknown_user_404_and_unregistered_user_480(pbx: Pbx) -> None:
    for target, status in (("nobody", 404), ("alice", 480)):
        caller = await Caller.open(pbx.port, target)
        try:
            caller.invite()
            _, reply = await final(caller.sip)
            assert reply.status == status, (target, reply.data[:60])
        finally:
            caller.close()


@pytest.mark.asyncio
async def test_callers_who_are_not_trunks_must_authenticate(database: AsyncEngine) -> None:
    endpoint = make_pbx_endpoint(database, Trunks())  # 127.0.0.1 is no trunk here
    await endpoint.start()
    caller = await Caller.open(endpoint.port, "echo", user="alice")
    try:
        caller.invite(cseq=1)
        _, challenge = await final(caller.sip)
        assert challenge.status == 401
        assert challenge.response.headers.fields("www-authenticate")
        # Right password, but the From says alice while the credentials are bob's: 403.
        auth = authorization(
            challenge.response,
            "bob",
            PASSWORD,
            "INVITE",
            endpoint.port,
            f"sip:echo@127.0.0.1:{endpoint.port}",
        )
        caller.invite(cseq=2, extra=auth)
        _, forged = await final(caller.sip)
        assert forged.status == 403
        # Wrong password: challenged again, like an unknown user.
        wrong = authorization(challenge.response, "alice", "guess", "INVITE", endpoint.port)
        caller.invite(cseq=3, extra=wrong)
        _, again = await final(caller.sip)
        assert again.status == 401
        good = authorization(
            again.response,
            "alice",
            PASSWORD,
            "INVITE",
            endpoint.port,
            f"sip:echo@127.0.0.1:{endpoint.port}",
        )
        caller.invite(cseq=4, extra=good)
        _, ok = await final(caller.sip)
        assert ok.status == 200
        caller.to_tag = ok.response.to_tag or ""
        caller.ack(cseq=4)
    finally:
        caller.close()
        await endpoint.stop()


@pytest.mark.asyncio
async def test_trunk_calls_never_go_out_but_users_calls_do(database: AsyncEngine) -> None:
    carrier = await ScriptedPhone.open("carrier", 0)  # the outside world: only answers
    trunks = Trunks(
        [
            Trunk.build("loopback", ["127.0.0.1/32"], numbers={"5551000": "echo"}),
            Trunk.build("carrier", ["192.0.2.0/24"], outbound=f"127.0.0.1:{carrier.sip.port}"),
        ]
    )
    endpoint = make_pbx_endpoint(database, trunks)
    await endpoint.start()
    carrier.server_port = endpoint.port
    try:
        # From the trunk: an outside number is refused, a mapped number reaches its target.
        outside = await Caller.open(endpoint.port, "+15550001")
        outside.invite()
        _, refused = await final(outside.sip)
        assert refused.status == 404
        outside.close()
        mapped = await Caller.open(endpoint.port, "5551000")
        mapped.invite()
        _, ok = await final(mapped.sip)
        assert ok.status == 200  # echo answers
        mapped.to_tag = ok.response.to_tag or ""
        mapped.ack()
        mapped.close()
        # An authenticated user's call to the same outside number goes to the carrier.
        no_trunk = make_pbx_endpoint(database, Trunks(trunks.trunks[1:]))
        await no_trunk.start()
        try:
            carrier.server_port = no_trunk.port
            user = await Caller.open(no_trunk.port, "+15550001", user="alice")
            user.invite(cseq=1)
            _, challenge = await final(user.sip)
            # An answer computed for another target (a sniffed one moved onto this call) fails.
            echo_uri = f"sip:echo@127.0.0.1:{no_trunk.port}"
            moved = authorization(challenge.response, "alice", PASSWORD, "INVITE", 0, echo_uri)
            user.invite(cseq=2, extra=moved)
            _, refused_again = await final(user.sip)
            assert refused_again.status == 401
            target = f"sip:+15550001@127.0.0.1:{no_trunk.port}"
            auth = authorization(refused_again.response, "alice", PASSWORD, "INVITE", 0, target)
            user.invite(cseq=3, extra=auth)
            invite = await carrier.next_request("INVITE")
            assert invite.uri.user == "+15550001"  # type: ignore[union-attr]
            assert invite.from_addr.uri.user == "alice"  # type: ignore[union-attr]
            carrier.answer(invite)
            _, answered = await final(user.sip)
            assert answered.status == 200
            user.to_tag = answered.response.to_tag or ""
            user.ack(cseq=3)
            user.close()
        finally:
            await no_trunk.stop()
    finally:
        carrier.close()
        await endpoint.stop()


@pytest.mark.asyncio
async def test_caller_holds_and_the_phone_hears_music_then_the_caller_again(pbx: Pbx) -> None:
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.answer(invite)
        _, ok = await final(caller.sip)
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        engine_port = parse_sdp(ok.response.body).media[0].port
        caller.rtp.send_tone(engine_port, 700.0, 3.0)
        phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 3.0)
        await asyncio.sleep(0.8)
        assert detect_tone(phone.rtp.audio()[-2400:], 700.0)
        # Hold: a re-INVITE with sendonly; the engine answers recvonly.
        body = sdp(caller.rtp.port, version=2, direction="sendonly")
        caller.sip.send(caller.request("INVITE", 2, body=body), pbx.port)
        _, held = await final(caller.sip)
        assert held.status == 200 and b"a=recvonly" in held.response.body
        caller.ack(cseq=2)
        mark = len(phone.rtp.audio())
        await asyncio.sleep(0.8)
        music = phone.rtp.audio()[mark + 800 :]
        assert len(music) > 3000
        assert not detect_tone(music, 700.0), "the held caller is still heard"
        assert rms_dbfs(music) > -40, "the phone hears silence, not music"
        body = sdp(caller.rtp.port, version=3, direction="sendrecv")
        caller.sip.send(caller.request("INVITE", 3, body=body), pbx.port)
        _, resumed = await final(caller.sip)
        assert resumed.status == 200
        caller.ack(cseq=3)
        mark = len(phone.rtp.audio())
        await asyncio.sleep(0.6)
        assert detect_tone(phone.rtp.audio()[mark + 800 :], 700.0)
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_music_extension_plays_the_hold_music(pbx: Pbx) -> None:
    caller = await Caller.open(pbx.port, "music")
    try:
        caller.invite()
        _, ok = await final(caller.sip)
        assert ok.status == 200
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        await asyncio.sleep(1.0)
        music = caller.rtp.audio()
        assert len(music) > 6000
        assert rms_dbfs(music) > -35
    finally:
        caller.close()


@pytest.mark.asyncio
async def test_sipp_cancels_while_the_phone_rings(pbx: Pbx, tmp_path: Path) -> None:
    """SIPp (`uac`-style, CANCEL before answer) calls carol, whose phone only rings."""
    phone = await ScriptedPhone.open("carol", pbx.port)
    try:
        await phone.register(PASSWORD)
        sipp = asyncio.create_task(
            run_sipp(
                f"127.0.0.1:{pbx.port}",
                "-sf",
                str(SCENARIOS / "cancel_ringing.xml"),
                "-s",
                "carol",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-mp",
                str(free_base(4)),
                "-m",
                "1",
                "-timeout",
                "20s",
                "-timeout_error",
                timeout=30,
                cwd=tmp_path,
            )
        )
        invite = await phone.next_request("INVITE", timeout=10)
        phone.reply(invite, 180)
        cancel = await phone.next_request("CANCEL", timeout=10)
        phone.reply(cancel, 200)
        phone.reply(invite, 487)
        code, output = await sipp
        assert code == 0, output[-2000:]
        assert (await phone.next_request("ACK")).call_id == invite.call_id
    finally:
        phone.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("phone_codec", ["PCMU", "PCMA"])
async def test_dtmf_passes_through_the_bridge(pbx: Pbx, phone_codec: str) -> None:
    """Same codec: the room forwards the RFC 4733 packets; PCMU caller and PCMA phone: the
    room mixes, and the engine re-sends the digits it received on the other leg."""
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.remote_rtp_port = parse_sdp(invite.body).media[0].port
        pt = 0 if phone_codec == "PCMU" else 8
        answer = sdp(phone.rtp.port).replace(
            b"RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000",
            f"RTP/AVP {pt} 101\r\na=rtpmap:{pt} {phone_codec}/8000".encode(),
        )
        phone.reply(invite, 200, body=answer)
        _, ok = await final(caller.sip)
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        engine_port = parse_sdp(ok.response.body).media[0].port
        # Audio first, so both legs latch; then the digits.
        caller.rtp.send_tone(engine_port, 700.0, 2.5)
        phone.rtp.send_tone(phone.remote_rtp_port, None, 2.5)
        await asyncio.sleep(0.5)
        await caller.rtp.send_digits(engine_port, "19#")
        await asyncio.sleep(0.5)
        assert phone.rtp.digits() == ["1", "9", "#"]
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_cancel_right_behind_the_invite_stops_it_before_the_phone_rings(pbx: Pbx) -> None:
    """The CANCEL arrives while the INVITE is still being routed (a database lookup): it is
    remembered, the INVITE gets its 487 and the phone is never called."""
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        branch = f"z9hG4bKINVITE1-{zlib.crc32(caller.call_id.encode())}"
        caller.sip.send(caller.request("CANCEL", 1, branch=branch), pbx.port)
        statuses: set[tuple[int, str]] = set()
        while len(statuses) < 2:
            reply = await caller.sip.receive()
            assert reply is not None, statuses
            if reply.status != 100:
                statuses.add((reply.status, reply.response.cseq.method))
        assert statuses == {(200, "CANCEL"), (487, "INVITE")}
        with pytest.raises(AssertionError):
            await phone.next_request("INVITE", timeout=0.5)
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_no_media_port_for_the_phone_leg_is_503_and_nothing_leaks(
    database: AsyncEngine,
) -> None:
    endpoint = make_pbx_endpoint(database, LOOPBACK, ports=2)  # one even port: the caller's
    await endpoint.start()
    phone = await ScriptedPhone.open("bob", endpoint.port)
    caller = await Caller.open(endpoint.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        _, reply = await final(caller.sip)
        assert reply.status == 503
        await asyncio.sleep(0.05)
        assert endpoint.bridges.active == 0
        assert endpoint.calls is not None and endpoint.calls.pool.in_use == 0
    finally:
        phone.close()
        caller.close()
        await endpoint.stop()


@pytest.mark.asyncio
async def test_a_phone_that_ignores_cancel_is_abandoned_after_64_t1(
    database: AsyncEngine,
) -> None:
    timers = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
    endpoint = make_pbx_endpoint(database, LOOPBACK, timers=timers)
    await endpoint.start()
    phone = await ScriptedPhone.open("bob", endpoint.port)
    caller = await Caller.open(endpoint.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)
        await asyncio.sleep(0.1)
        branch = f"z9hG4bKINVITE1-{zlib.crc32(caller.call_id.encode())}"
        caller.sip.send(caller.request("CANCEL", 1, branch=branch), endpoint.port)
        await phone.next_request("CANCEL")  # and never answered, nor the INVITE
        assert endpoint.bridges.active == 1
        await asyncio.sleep(64 * 0.05 + 0.5)
        assert endpoint.bridges.active == 0
        assert endpoint.calls is not None and endpoint.calls.pool.in_use == 0
    finally:
        phone.close()
        caller.close()
        await endpoint.stop()


@pytest.mark.asyncio
async def test_bye_on_the_early_dialog_stops_the_ringing(pbx: Pbx) -> None:
    """§15: a caller may end an early dialog with BYE; the INVITE then gets 487 and the
    phone a CANCEL."""
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)
        provisional = await caller.sip.receive()
        while provisional is not None and provisional.status != 180:
            provisional = await caller.sip.receive()
        assert provisional is not None
        caller.to_tag = provisional.response.to_tag or ""
        caller.sip.send(caller.request("BYE", 2), pbx.port)
        statuses: set[tuple[int, str]] = set()
        while len(statuses) < 2:
            reply = await caller.sip.receive()
            assert reply is not None, statuses
            statuses.add((reply.status, reply.response.cseq.method))
        assert statuses == {(200, "BYE"), (487, "INVITE")}
        cancel = await phone.next_request("CANCEL")
        assert cancel.call_id == invite.call_id
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_max_forwards_is_carried_through_and_a_loop_ends_in_483(pbx: Pbx) -> None:
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "bob")
    try:
        await phone.register(PASSWORD)
        invite = caller.request("INVITE", 1, body=sdp(caller.rtp.port))
        caller.sip.send(invite.replace(b"Max-Forwards: 70", b"Max-Forwards: 5"), pbx.port)
        ringing = await phone.next_request("INVITE")
        assert ringing.headers.get("Max-Forwards") == "4"
        phone.reply(ringing, 486)
        _, busy = await final(caller.sip)
        assert busy.status == 486
        looped = caller.request("INVITE", 2, body=sdp(caller.rtp.port))
        caller.sip.send(looped.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), pbx.port)
        _, refused = await final(caller.sip)
        assert refused.status == 483
    finally:
        phone.close()
        caller.close()


@pytest.mark.asyncio
async def test_an_answered_call_is_connected_to_a_phone_hearing_music_while_it_rings(
    pbx: Pbx,
) -> None:
    """What a queue does with its caller: the call is up (here on `music`); the engine rings
    a phone, the caller hears music meanwhile, then the two talk."""
    phone = await ScriptedPhone.open("bob", pbx.port)
    caller = await Caller.open(pbx.port, "music")
    try:
        await phone.register(PASSWORD)
        caller.invite()
        _, ok = await final(caller.sip)
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        engine_port = parse_sdp(ok.response.body).media[0].port
        calls = pbx.endpoint.calls
        assert calls is not None
        call = calls.get(DialogId(caller.call_id, caller.to_tag, "caller1"))
        assert call is not None
        calls.release_media(call)
        (binding,) = pbx.endpoint.registrations.contacts_of_user("bob")  # type: ignore[union-attr]
        connecting = asyncio.create_task(
            pbx.endpoint.bridges.connect_answered(
                call,
                [(binding.contact_uri, Peer("UDP", "127.0.0.1", phone.sip.port))],
                caller_id="uac",
            )
        )
        invite = await phone.next_request("INVITE")
        phone.reply(invite, 180)
        mark = len(caller.rtp.audio())
        await asyncio.sleep(0.6)
        assert rms_dbfs(caller.rtp.audio()[mark:]) > -40, "no music while the phone rang"
        phone.answer(invite)
        await connecting
        caller.rtp.send_tone(engine_port, 700.0, 1.5)
        phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 1.5)
        await asyncio.sleep(1.7)
        assert abs(dominant_frequency(phone.rtp.audio()[-4000:]) - 700.0) < 20
        assert abs(dominant_frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20
        caller.sip.send(caller.request("BYE", 2), pbx.port)
        bye = await phone.next_request("BYE")
        phone.reply(bye, 200)
    finally:
        phone.close()
        caller.close()
