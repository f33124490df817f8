"""The ACD on real calls over loopback: IVR → queue → an agent's registered phone.

A whole contact center is built in-process (engine, IVR, ACD, call records, voicemail,
callbacks, customers on a migrated SQLite) and driven by independent peers: scripted SIP
callers and phones with their RTP peers, SIPp sending RFC 4733 digits, and baresip as an
agent's phone. Audio is proven by tones measured at the far end, never assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.session import create_sessionmaker
from callcenter.engine.browser import BrowserPhones
from callcenter.engine.sip_endpoint import SipEndpoint
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import decode_wav, dominant_frequency, rms_dbfs
from callcenter.services.acd.agent_state import AgentState
from callcenter.services.acd.callbacks import CallbackStore
from callcenter.services.acd.config import load_acd_config
from callcenter.services.acd.inputs import Login
from callcenter.services.acd.runtime import AcdService
from callcenter.services.audit import AuditLog
from callcenter.services.callrecords import CallLog
from callcenter.services.customers import CustomerService
from callcenter.services.ivr import FlowRegistry, load_flow, simulate
from callcenter.services.ivr.prompts import PromptLibrary
from callcenter.services.ivr.session import IvrApplication
from callcenter.services.recordings import RecordingService
from callcenter.services.subscribers import add_user
from callcenter.services.voicemail import VoicemailService
from callcenter.sip import Request, make_response, parse_message
from callcenter.sip.sdp import parse_sdp

from .pcap import LoopbackCapture, pcmu_audio, rtp_tone, write_pcap
from .phone import ScriptedPhone, authorization, final, sdp
from .rtp_peer import free_even_base, voiced
from .test_bridge import PASSWORD, REALM, Caller, make_pbx_endpoint
from .test_bridge_peers import baresip_agent
from .test_ivr_calls import TUESDAY_10AM
from .test_sipp import free_port, require_raw_sockets, run_sipp

pytest_plugins = ["tests.engine.test_bridge"]


QUEUES = """\
queues:
  support:
    strategy: longest-idle
    ring_timeout: 1.5
    wrap_up: 0.6
    announce_every: null
    callback: true
  sales:
    strategy: round-robin
    ring_timeout: 2
    wrap_up: 0
    announce_every: null
    max_wait: 1
    overflow: {voicemail: sales}
  billing:
    strategy: ring-all
    ring_timeout: 3
    wrap_up: 0
    announce_every: 1
agents:
  amy: {queues: [support, sales, billing], skills: {english: 5}}
  ben: {queues: [support, billing], skills: {english: 3}}
"""

TRANSFER = """\
start: t
nodes:
  t:
    type: transfer
    to: ben
"""

DIRECT = """\
start: q
nodes:
  q:
    type: queue
    queue: {queue}
"""

# A payment step: the recording pauses while the card number is keyed (and read out).
PAY = """\
start: hello
nodes:
  hello:
    type: play
    prompt: "text:Payments."
    next: pause
  pause:
    type: set
    variables: {recording: paused}
    next: card
  card:
    type: gather
    prompt: "text:Key the card number, then hash."
    variable: card
    max_digits: 8
    timeout: 4
    retries: 0
    fallback: resume
    next: resume
  resume:
    type: set
    variables: {recording: active}
    next: q
  q:
    type: queue
    queue: support
"""

VIP = "+441632960001"
REGULAR = "+441632960002"
UNKNOWN = "+441632960999"
SUPPORT = "5100"
SALES = "5200"
BILLING = "5300"
TO_BEN = "5400"
PAY_LINE = "5500"
DEMO = "5000"


@dataclass
class Center:
    database: AsyncEngine
    endpoint: SipEndpoint
    acd: AcdService
    ivr: IvrApplication
    call_log: CallLog
    voicemail: VoicemailService
    callbacks: CallbackStore
    library: PromptLibrary

    @property
    def port(self) -> int:
        return self.endpoint.port

    async def record(self, call_id: str) -> dict[str, Any]:
        """The call record as stored (written by the call log's writer)."""
        await self.call_log.flush()
        view = await self.call_log.get(call_id)
        assert view is not None, f"no call record for {call_id}"
        return {
            "disposition": view.disposition,
            "agent": view.agent,
            "queue": view.queue,
            "ended_by": view.ended_by,
            "customer_id": view.customer_id,
            # As JSON readers see it (the view's read-only tuples become lists).
            "timeline": json.loads(json.dumps(view.timeline, default=dict)),
        }


def kinds(timeline: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in timeline]


@contextlib.asynccontextmanager
async def open_center(
    database: AsyncEngine,
    tmp_path: Path,
    *,
    outbound_port: int | None = None,
    phones: BrowserPhones | None = None,
    recordings: RecordingService | None = None,
    record_ivr: bool = False,
    audit: AuditLog | None = None,
) -> AsyncIterator[Center]:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    shutil.copy("ivr/flows/default.yaml", flows / "default.yaml")
    (flows / "direct_support.yaml").write_text(DIRECT.format(queue="support"))
    (flows / "direct_sales.yaml").write_text(DIRECT.format(queue="sales"))
    (flows / "direct_billing.yaml").write_text(DIRECT.format(queue="billing"))
    (flows / "to_ben.yaml").write_text(TRANSFER)
    (flows / "pay.yaml").write_text(PAY)
    (tmp_path / "queues.yaml").write_text(QUEUES)
    trunks = Trunks(
        [
            Trunk.build(
                "loopback",
                ["127.0.0.1/32"],
                numbers={
                    DEMO: "flow:default",
                    SUPPORT: "flow:direct_support",
                    SALES: "flow:direct_sales",
                    BILLING: "flow:direct_billing",
                    TO_BEN: "flow:to_ben",
                    PAY_LINE: "flow:pay",
                },
                outbound=f"127.0.0.1:{outbound_port}" if outbound_port else None,
            )
        ]
    )
    sessions = create_sessionmaker(database)
    endpoint = make_pbx_endpoint(database, trunks, ring_timeout=10.0)
    await endpoint.start()
    assert endpoint.calls is not None and endpoint.router is not None
    library = PromptLibrary(Path("ivr/prompts"), tmp_path / "prompt-cache")
    call_log = CallLog(sessions, flush_interval=0.1)
    voicemail = VoicemailService(endpoint.calls, sessions, tmp_path / "recordings", library)
    callbacks = CallbackStore(sessions)
    acd = AcdService(
        load_acd_config(tmp_path / "queues.yaml"),
        calls=endpoint.calls,
        bridges=endpoint.bridges,
        registrations=endpoint.registrations,
        trunks=trunks,
        library=library,
        customers=CustomerService(sessions, default_region="GB"),
        call_log=call_log,
        callbacks=callbacks,
        voicemail=voicemail,
        tick_interval=0.05,
        phones=phones,
        recordings=recordings,
    )
    ivr = IvrApplication(
        endpoint.calls,
        FlowRegistry(flows),
        library,
        clock=lambda: TUESDAY_10AM,
        on_queued=acd.on_queued,
        on_voicemail=acd.on_voicemail,
        on_transfer=acd.on_transfer,
        call_log=call_log,
        recordings=recordings if record_ivr else None,
        audit=audit,
    )
    endpoint.router.applications["flow"] = ivr
    started: list[CallLog | VoicemailService | IvrApplication | AcdService] = []
    try:
        for service in (call_log, voicemail, ivr, acd):
            await service.start()
            started.append(service)
        yield Center(database, endpoint, acd, ivr, call_log, voicemail, callbacks, library)
    finally:
        for service in reversed(started):
            await service.stop()
        await endpoint.stop()


@pytest_asyncio.fixture(autouse=True)
async def staff_and_customers(database: AsyncEngine) -> None:
    """The agents of QUEUES with SIP phones, and two known customers (a VIP, a regular)."""
    sessions = create_sessionmaker(database)
    async with sessions.begin() as session:
        for user in ("amy", "ben"):
            await add_user(session, username=user, role="agent", realm=REALM, sip_password=PASSWORD)
    service = CustomerService(sessions, default_region="GB")
    await service.create(name="Vera Important", company="Big Co", tier="vip", phones=[VIP])
    await service.create(name="Rob Regular", tier="regular", phones=[REGULAR])


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what or predicate}"
        await asyncio.sleep(0.02)


async def place(center: Center, number: str, caller: str) -> tuple[Caller, int]:
    """A trunk call from `caller` to `number`, answered by the IVR; returns the engine's RTP
    port for it."""
    call = await Caller.open(center.port, number, user=caller)
    call.invite()
    _, ok = await final(call.sip)
    assert ok.status == 200, ok.data
    call.to_tag = ok.response.to_tag or ""
    call.ack()
    return call, parse_sdp(ok.response.body).media[0].port


async def agent_phone(center: Center, user: str) -> ScriptedPhone:
    phone = await ScriptedPhone.open(user, center.port)
    await phone.register(PASSWORD)
    return phone


async def hung_up(caller: Caller, timeout: float) -> None:
    """Wait for the engine's BYE to the caller (and answer it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(caller.sip.collector.queue.get(), left)
        except TimeoutError:
            break
        if data.startswith(b"BYE "):
            bye = parse_message(data)
            assert isinstance(bye, Request)
            caller.sip.send(bytes(make_response(bye, 200)), caller.server_port)
            return
    raise AssertionError(f"no BYE within {timeout} s")


def waiting(center: Center, queue: str) -> list[str]:
    return [c.call_id for c in center.acd.router.waiting(queue)]


async def talk(caller: Caller, engine_port: int, phone: ScriptedPhone) -> None:
    """700 Hz from the caller, 1300 Hz from the agent: each must hear the other."""
    caller.rtp.send_tone(engine_port, 700.0, 1.2)
    phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 1.2)
    await asyncio.sleep(1.4)
    assert abs(dominant_frequency(phone.rtp.audio()[-4000:]) - 700.0) < 20
    assert abs(dominant_frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20


@pytest.mark.asyncio
async def test_vip_caller_overtakes_a_regular_caller_and_wrap_up_delays_the_next(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_center(database, tmp_path) as center:
        amy = await agent_phone(center, "amy")
        regular, _ = await place(center, SUPPORT, REGULAR)
        await until(lambda: waiting(center, "support") == [regular.call_id], what="regular queued")
        vip, vip_port = await place(center, SUPPORT, VIP)
        await until(lambda: len(waiting(center, "support")) == 2, what="vip queued")
        # The VIP came second and is first: tier rank 3 x weight 10 over the same priority.
        assert waiting(center, "support") == [vip.call_id, regular.call_id]
        assert rms_dbfs(vip.rtp.audio()[-4000:]) > -40, "no music on hold"

        center.acd.agent_input("amy", Login())
        invite = await amy.next_request("INVITE")
        assert VIP in (invite.headers.get("From") or ""), invite.headers.get("From") or ""
        assert "Vera Important" in (invite.headers.get("From") or "")
        amy.reply(invite, 180)
        amy.answer(invite)
        await until(lambda: center.acd.agent_status("amy").state == "on-call")
        await talk(vip, vip_port, amy)

        vip.sip.send(vip.request("BYE", 2), center.port)
        bye = await amy.next_request("BYE")
        amy.reply(bye, 200)
        await until(lambda: center.acd.agent_status("amy").state == "wrap-up")
        loop = asyncio.get_running_loop()
        wrap_up_started = loop.time()
        second = await amy.next_request("INVITE", timeout=5)
        # The queue's 0.6 s of wrap-up passed before the regular caller was offered.
        assert loop.time() - wrap_up_started >= 0.5
        assert REGULAR in (second.headers.get("From") or "")
        amy.reply(second, 486)  # busy: she declined it
        await until(lambda: center.acd.agent_status("amy").reason == "missed")

        record = await center.record(vip.call_id)
        assert record["disposition"] == "answered" and record["agent"] == "amy"
        assert record["ended_by"] == "caller" and record["customer_id"] is not None
        timeline = record["timeline"]
        assert kinds(timeline)[:6] == [
            "arrived",
            "ivr-started",
            "ivr-node",
            "customer-matched",
            "queued",
            "priority",
        ]
        offered = next(e for e in timeline if e["kind"] == "offered")
        assert offered["agents"] == ["amy"] and offered["strategy"] == "longest-idle"
        assert offered["candidates"][0]["agent"] == "amy" and offered["rule"]
        assert offered["effective_priority"] == 30
        regular_record = await center.record(regular.call_id)
        assert "agent-declined" in kinds(regular_record["timeline"])
        regular.sip.send(regular.request("BYE", 2), center.port)
        amy.close()
        regular.close()
        vip.close()


@pytest.mark.asyncio
async def test_ring_no_answer_sets_the_agent_away_and_offers_the_next_agent(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_center(database, tmp_path) as center:
        amy = await agent_phone(center, "amy")
        ben = await agent_phone(center, "ben")
        center.acd.agent_input("amy", Login())
        await asyncio.sleep(0.1)  # amy has been idle longest
        center.acd.agent_input("ben", Login())
        caller, port = await place(center, SUPPORT, UNKNOWN)
        first = await amy.next_request("INVITE")
        amy.reply(first, 180)  # and nothing more: she is not at her desk
        cancel = await amy.next_request("CANCEL", timeout=4)
        amy.reply(cancel, 200)
        amy.reply(first, 487)
        await until(lambda: center.acd.agent_status("amy").state != "reserved")
        status = center.acd.agent_status("amy")
        assert (status.state, status.reason) == ("away", "missed")
        second = await ben.next_request("INVITE")
        ben.answer(second)
        await until(lambda: center.acd.agent_status("ben").state == "on-call")
        await talk(caller, port, ben)
        # The caller holds (re-INVITE, sendonly): ben hears the music; then the caller resumes.
        for cseq, direction in ((2, "sendonly"), (3, "sendrecv")):
            body = sdp(caller.rtp.port, version=cseq, direction=direction)
            caller.sip.send(caller.request("INVITE", cseq, body=body), center.port)
            _, ok = await final(caller.sip)
            assert ok.status == 200
            caller.ack(cseq)
            if direction == "sendonly":
                mark = len(ben.rtp.audio())
                await asyncio.sleep(0.8)
                assert rms_dbfs(ben.rtp.audio()[mark:]) > -40, "no music for the agent"
        caller.sip.send(caller.request("BYE", 4), center.port)
        bye = await ben.next_request("BYE")
        ben.reply(bye, 200)
        record = await center.record(caller.call_id)
        timeline = record["timeline"]
        holds = [(e["kind"], e["by"]) for e in timeline if e["kind"] in ("hold", "resume")]
        assert holds == [("hold", "caller"), ("resume", "caller")]
        missed = next(e for e in timeline if e["kind"] == "ring-no-answer")
        assert missed["agent"] == "amy"
        offers = [e for e in timeline if e["kind"] == "offered"]
        assert [o["agents"] for o in offers] == [["amy"], ["ben"]]
        assert offers[1]["excluded"] == ["amy"]
        assert record["agent"] == "ben" and record["disposition"] == "answered"
        for peer in (amy, ben, caller):
            peer.close()


@pytest.mark.asyncio
async def test_max_wait_overflows_to_voicemail_which_records_the_caller(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_center(database, tmp_path) as center:
        caller, port = await place(center, SALES, UNKNOWN)  # nobody logged in to sales
        await until(lambda: caller.call_id in waiting(center, "sales"), what="queued to sales")
        await until(lambda: caller.call_id not in center.acd.waiters, timeout=5, what="overflow")
        greeting = await center.library.load(center.voicemail.greeting)
        # The greeting, then the beep: speak after them.
        await asyncio.sleep(greeting.duration + 0.6)
        await caller.rtp.send_tone(port, 700.0, 2.0)
        await caller.rtp.send_digits(port, "#")
        await hung_up(caller, 10.0)
        messages = await center.voicemail.messages("sales")
        assert len(messages) == 1
        message = messages[0]
        assert message.call_id == caller.call_id and message.caller == UNKNOWN
        assert 1.5 <= message.duration_seconds <= 3.0, message.duration_seconds
        wav = decode_wav((tmp_path / "recordings" / message.path).read_bytes())
        tone = voiced(wav.samples)
        assert abs(dominant_frequency(tone) - 700.0) < 20
        record = await center.record(caller.call_id)
        assert record["disposition"] == "voicemail"
        assert "overflow" in kinds(record["timeline"])
        assert "voicemail" in kinds(record["timeline"])
        caller.close()


@pytest.mark.asyncio
async def test_callback_keeps_its_place_across_a_restart_and_is_dialled_agent_first(
    database: AsyncEngine, tmp_path: Path
) -> None:
    customer = await ScriptedPhone.open("customer", 0)  # the carrier's side of the trunk
    async with open_center(database, tmp_path, outbound_port=customer.sip.port) as center:
        customer.server_port = center.port
        caller, port = await place(center, SUPPORT, REGULAR)
        await until(lambda: waiting(center, "support") == [caller.call_id], what="queued")
        entered_at = center.acd.router.waiting("support")[0].entered_at
        await caller.rtp.send_digits(port, "*")
        await until(lambda: caller.call_id not in waiting(center, "support"), what="booked")
        # The caller's place is now the callback's: same queue, same entered_at.
        (kept,) = center.acd.router.waiting("support")
        assert kept.call_id.startswith("callback:") and kept.entered_at == entered_at
        stored = await center.callbacks.pending()
        assert [s.record.number for s in stored] == [REGULAR]
        await hung_up(caller, 15.0)
        record = await center.record(caller.call_id)
        assert record["disposition"] == "callback"
        caller.close()

    # The service restarts; a new caller arrives before any agent is free.
    async with open_center(database, tmp_path, outbound_port=customer.sip.port) as center:
        customer.server_port = center.port
        (callback_id,) = list(center.acd.pending_callbacks)
        later, _ = await place(center, SUPPORT, VIP)
        await until(lambda: len(waiting(center, "support")) == 2, what="both waiting")
        first = center.acd.router.waiting("support")
        # The VIP outranks everyone, so compare the callback with its own kept place.
        callback_entry = next(c for c in first if c.call_id == callback_id)
        assert callback_entry.entered_at == entered_at
        later.sip.send(later.request("BYE", 2), center.port)
        await until(lambda: waiting(center, "support") == [callback_id], what="vip gone")

        ben = await agent_phone(center, "ben")
        center.acd.agent_input("ben", Login())
        invite = await ben.next_request("INVITE")
        assert REGULAR in (invite.headers.get("From") or "")  # "Callback +44…" on his display
        ben.answer(invite)
        dialled = await customer.next_request("INVITE", timeout=5)
        assert REGULAR.lstrip("+") in str(dialled.uri) or REGULAR in str(dialled.uri)
        customer.answer(dialled)
        await asyncio.sleep(0.3)
        ben.rtp.send_tone(ben.remote_rtp_port, 1300.0, 1.2)
        customer.rtp.send_tone(customer.remote_rtp_port, 700.0, 1.2)
        await asyncio.sleep(1.4)
        assert abs(dominant_frequency(ben.rtp.audio()[-4000:]) - 700.0) < 20
        assert abs(dominant_frequency(customer.rtp.audio()[-4000:]) - 1300.0) < 20
        customer.sip.send(_bye_from_callee(dialled, customer, center.port), center.port)
        ben_bye = await ben.next_request("BYE")
        ben.reply(ben_bye, 200)
        stored_id = int(callback_id.split(":")[1])
        await until(lambda: center.acd.agent_status("ben").state != "on-call")
        await asyncio.sleep(0.2)
        assert await center.callbacks.get(stored_id) == ("done", 1)
        ben.close()
        later.close()
    customer.close()


def _bye_from_callee(invite: object, phone: ScriptedPhone, server_port: int) -> bytes:
    """The BYE a callee sends in the dialog the INVITE made (From/To swapped)."""
    from callcenter.sip import Request

    assert isinstance(invite, Request)
    headers = invite.headers
    contact = (headers.get("Contact") or "").strip().lstrip("<").split(">")[0]
    return (
        f"BYE {contact} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{phone.sip.port};branch=z9hG4bKcbye{phone.sip.port}\r\n"
        f"From: {headers.get('To')};tag={phone.tag}\r\n"
        f"To: {headers.get('From')}\r\n"
        f"Call-ID: {invite.call_id}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


IVR_SCENARIO = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- A caller walks the demo flow: the greeting plays, then during the menu prompt the RFC
     4733 digit 2 (SIPp's own capture) picks support; queued, then answered by an agent, it
     plays a 700 Hz tone and hangs up. -->
<scenario name="IVR to support">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:+441632960002@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true" />
  <recv response="180" optional="true" />
  <recv response="200" rtd="true" />
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:+441632960002@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{menu_ms}" />
  <nop>
    <action>
      <exec play_pcap_audio="dtmf_2833_2.pcap" />
    </action>
  </nop>
  <pause milliseconds="{agent_ms}" />
  <nop>
    <action>
      <exec play_pcap_audio="tone.pcap" />
    </action>
  </nop>
  <pause milliseconds="3200" />
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:+441632960002@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true" />
</scenario>
"""


@pytest.mark.asyncio
async def test_sipp_walks_the_demo_flow_to_support_and_a_baresip_agent_answers(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """SIPp dials the demo number, presses 2 (RFC 4733) during the menu, is queued to support
    and answered by ben's baresip (auto-answer). Its 700 Hz reaches baresip's recording;
    baresip's 1300 Hz reaches SIPp (seen on lo by an AF_PACKET capture). The call record's
    IVR path is the path `callcenter ivr simulate` prints for the same digits and time."""
    require_raw_sockets()
    shutil.copy("/usr/share/sip-tester/dtmf_2833_2.pcap", tmp_path)
    write_pcap(tmp_path / "tone.pcap", rtp_tone(700.0, 3.0))
    async with open_center(database, tmp_path) as center:
        library = center.library
        flow = center.ivr.flows.get("default")
        greeting = await library.load(flow.nodes["greeting"].prompt)  # type: ignore[union-attr]
        menu_ms = round((greeting.duration + 1.0) * 1000)  # 1 s into the menu prompt
        scenario = tmp_path / "ivr_support.xml"
        scenario.write_text(IVR_SCENARIO.format(menu_ms=menu_ms, agent_ms=2500))
        command, dumps = baresip_agent(tmp_path, "ben", center.port)
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            await until(
                lambda: bool(center.endpoint.registrations.contacts_of_user("ben")),  # type: ignore[union-attr]
                timeout=10,
                what="baresip registered",
            )
            center.acd.agent_input("ben", Login())
            assert center.acd.agent_status("ben").state == AgentState.AVAILABLE.value
            media_port = free_even_base(2)
            call_id = "acd-sipp-1@127.0.0.1"
            async with LoopbackCapture(media_port) as capture:
                code, output = await run_sipp(
                    f"127.0.0.1:{center.port}",
                    "-sf",
                    str(scenario),
                    "-s",
                    DEMO,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(free_port()),
                    "-mp",
                    str(media_port),
                    "-m",
                    "1",
                    "-cid_str",
                    "acd-sipp-%u@%s",
                    "-timeout",
                    "40s",
                    "-timeout_error",
                    timeout=60,
                    cwd=tmp_path,
                )
            assert code == 0, output
            record = await center.record(call_id)
            assert record["agent"] == "ben" and record["queue"] == "support"
            assert record["disposition"] == "answered" and record["ended_by"] == "caller"
            timeline = record["timeline"]
            assert isinstance(timeline, list)
            digits = [e["digits"] for e in timeline if e["kind"] == "digits"]
            assert digits == ["2"]
            real_path = [e["node"] for e in timeline if e["kind"] == "ivr-node"]
            flow_file, _ = load_flow(tmp_path / "flows" / "default.yaml")
            simulated = simulate(flow_file, "2", TUESDAY_10AM)
            assert tuple(real_path) == simulated.path
            # What SIPp heard from the agent, decoded from the wire.
            heard = []
            for peer in capture.peers():
                heard.extend(capture.between(peer, media_port))
            audio = voiced(pcmu_audio(sorted(heard, key=lambda d: d.at))[-8000 * 3 :])
            assert len(audio) > 8000, "less than a second of the agent reached the caller"
            assert abs(dominant_frequency(audio[-8000:]) - 1300.0) < 25
        finally:
            process.terminate()
            output_b, _ = await asyncio.to_thread(process.communicate, None, 10)
        await asyncio.sleep(0.3)
        decoded = sorted(dumps.glob("*dec*.wav"))
        assert decoded, f"baresip wrote no recording: {output_b.decode(errors='replace')}"
        wav = decode_wav(decoded[-1].read_bytes())
        samples = wav.samples if wav.samples.ndim == 1 else wav.samples[:, 0]
        rate = wav.sample_rate
        tone = voiced(samples)
        assert len(tone) > rate, "baresip heard less than a second of the caller"
        assert abs(dominant_frequency(tone[-rate:], rate) - 700.0) < 25


@pytest.mark.asyncio
async def test_ring_all_rings_every_agent_and_the_first_answer_takes_the_call(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """Billing rings everyone at once; while nobody is free the caller hears its position."""
    async with open_center(database, tmp_path) as center:
        amy = await agent_phone(center, "amy")
        ben = await agent_phone(center, "ben")
        caller, port = await place(center, BILLING, UNKNOWN)
        await until(lambda: caller.call_id in waiting(center, "billing"), what="queued")
        await asyncio.sleep(1.5)  # one announcement interval and a bit
        record = await center.record(caller.call_id)
        announced = [e for e in record["timeline"] if e["kind"] == "announced"]
        assert announced and announced[0]["position"] == 1
        center.acd.agent_input("amy", Login())
        center.acd.agent_input("ben", Login())
        to_amy = await amy.next_request("INVITE")
        to_ben = await ben.next_request("INVITE")
        amy.reply(to_amy, 180)
        ben.reply(to_ben, 180)
        ben.answer(to_ben)
        cancel = await amy.next_request("CANCEL")
        amy.reply(cancel, 200)
        amy.reply(to_amy, 487)
        await until(lambda: center.acd.agent_status("ben").state == "on-call")
        await talk(caller, port, ben)
        # Released, not missed: amy is still available.
        assert center.acd.agent_status("amy").state == "available"
        record = await center.record(caller.call_id)
        offered = next(e for e in record["timeline"] if e["kind"] == "offered")
        assert sorted(offered["agents"]) == ["amy", "ben"]
        assert offered["strategy"] == "ring-all"
        caller.sip.send(caller.request("BYE", 2), center.port)
        bye = await ben.next_request("BYE")
        ben.reply(bye, 200)
        for peer in (amy, ben, caller):
            peer.close()


@pytest.mark.asyncio
async def test_ivr_transfer_node_rings_the_user_and_joins_the_caller(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_center(database, tmp_path) as center:
        ben = await agent_phone(center, "ben")
        caller, port = await place(center, TO_BEN, UNKNOWN)
        invite = await ben.next_request("INVITE")
        assert UNKNOWN in (invite.headers.get("From") or "")
        ben.answer(invite)
        await asyncio.sleep(0.2)
        await talk(caller, port, ben)
        bye_to_caller = asyncio.create_task(hung_up(caller, 5.0))
        ben.sip.send(_bye_from_callee(invite, ben, center.port), center.port)
        await bye_to_caller
        record = await center.record(caller.call_id)
        assert record["disposition"] == "transferred" and record["ended_by"] == "agent"
        assert "transfer-answered" in kinds(record["timeline"])
        ben.close()
        caller.close()


@pytest.mark.asyncio
async def test_an_agent_whose_phone_unregisters_goes_offline_and_comes_back(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """Never stuck: the reconcile loop follows the registrar, not what the agent last said."""
    async with open_center(database, tmp_path) as center:
        amy = await agent_phone(center, "amy")
        center.acd.agent_input("amy", Login())
        assert center.acd.agent_status("amy").state == "available"
        unregister = amy._register(3).replace(b"Expires: 600", b"Expires: 0")
        first = await amy.sip.request(unregister, center.port)
        assert first is not None and first.status == 401
        header = authorization(first.response, "amy", PASSWORD, "REGISTER", center.port)
        done = await amy.sip.request(
            amy._register(4, header).replace(b"Expires: 600", b"Expires: 0"), center.port
        )
        assert done is not None and done.status == 200
        await until(lambda: center.acd.agent_status("amy").reason == "offline", timeout=3)
        caller, _ = await place(center, SUPPORT, UNKNOWN)
        await until(lambda: caller.call_id in waiting(center, "support"), what="queued")
        await amy.register(PASSWORD)
        await until(lambda: center.acd.agent_status("amy").state != "away", timeout=3)
        invite = await amy.next_request("INVITE")  # back online, and the call finds her
        amy.reply(invite, 486)
        caller.sip.send(caller.request("BYE", 2), center.port)
        amy.close()
        caller.close()


@pytest.mark.asyncio
async def test_a_phone_that_is_gone_rings_out_within_the_ring_timeout(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """amy's registration outlives her phone (a laptop closed): the INVITE gets nothing back,
    not even 100 Trying. The queue's ring timeout, not 64*T1, moves the call to ben."""
    async with open_center(database, tmp_path) as center:
        amy = await agent_phone(center, "amy")
        ben = await agent_phone(center, "ben")
        center.acd.agent_input("amy", Login())
        await asyncio.sleep(0.1)
        center.acd.agent_input("ben", Login())
        amy.close()  # gone without unregistering
        caller, port = await place(center, SUPPORT, UNKNOWN)
        loop = asyncio.get_running_loop()
        placed_at = loop.time()
        invite = await ben.next_request("INVITE", timeout=6)
        # The queue's ring timeout is 1.5 s; the transaction's own would be 32 s.
        assert loop.time() - placed_at < 4.0
        ben.answer(invite)
        await until(lambda: center.acd.agent_status("ben").state == "on-call")
        await talk(caller, port, ben)
        assert center.acd.agent_status("amy").reason == "missed"
        caller.sip.send(caller.request("BYE", 2), center.port)
        bye = await ben.next_request("BYE")
        ben.reply(bye, 200)
        ben.close()
        caller.close()
