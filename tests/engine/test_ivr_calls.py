"""Calls into the IVR over loopback: a trunk number runs a flow on the answered call.

A raw SIP UAC with its RTP peer dials a trunk number mapped to `flow:default` (the demo flow
in ivr/flows/, its prompts rendered by the real espeak-ng): it hears the greeting, presses 2
(RFC 4733) during the menu prompt, which stops it, and at an open hour is queued to support
and hears hold music. Silence walks a short flow through its retry to the fallback, which
says goodbye and hangs up with BYE. A second call plays the prompts rendered for the first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from callcenter.engine.media import MediaClock, RtpPortPool
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import rms_dbfs
from callcenter.services.ivr import FlowRegistry
from callcenter.services.ivr.interpreter import EnqueueCall
from callcenter.services.ivr.prompts import PromptLibrary
from callcenter.services.ivr.session import IvrApplication, IvrSession
from callcenter.sip import Request, parse_message

from .rtp_peer import RtpPeer
from .sip_client import UdpClient
from .test_calls import Uac, free_base

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")

LONDON = ZoneInfo("Europe/London")
TUESDAY_10AM = dt.datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)  # support is open

SHORT_FLOW = """\
start: menu
nodes:
  menu:
    type: menu
    prompt: "text:Press 2."
    options: {2: support}
    timeout: 0.4
    retries: 1
    no_input_prompt: "text:Sorry."
    fallback: fallback
  support:
    type: queue
    queue: support
  fallback:
    type: play
    prompt: "text:Goodbye."
    next: bye
  bye:
    type: hangup
"""


@dataclass
class Ivr:
    endpoint: SipEndpoint
    app: IvrApplication
    queued: asyncio.Queue[tuple[IvrSession, EnqueueCall]]


@pytest_asyncio.fixture
async def ivr(tmp_path: Path) -> AsyncIterator[Ivr]:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy("ivr/flows/default.yaml", flows / "default.yaml")
    (flows / "short.yaml").write_text(SHORT_FLOW)
    trunks = Trunks(
        [
            Trunk.build(
                "loopback",
                ["127.0.0.1/32"],
                numbers={"5000": "flow:default", "5001": "flow:short", "5002": "flow:nosuch"},
            )
        ]
    )
    base = free_base()
    endpoint = SipEndpoint(
        EndpointConfig(host="127.0.0.1", port=0),
        media=(RtpPortPool("127.0.0.1", base, base + 199), MediaClock()),
        trunks=trunks,
    )
    queued: asyncio.Queue[tuple[IvrSession, EnqueueCall]] = asyncio.Queue()
    assert endpoint.calls is not None and endpoint.router is not None
    app = IvrApplication(
        endpoint.calls,
        FlowRegistry(flows),
        PromptLibrary(Path("ivr/prompts"), tmp_path / "prompt-cache"),
        clock=lambda: TUESDAY_10AM,
        on_queued=lambda session, action: queued.put_nowait((session, action)),
    )
    endpoint.router.applications["flow"] = app
    endpoint.router.applications["ivr"] = app
    await endpoint.start()
    await app.start()
    yield Ivr(endpoint, app, queued)
    await app.stop()
    await endpoint.stop()


async def _uac(ivr: Ivr, target: str) -> Uac:
    return Uac(await UdpClient.open(), await RtpPeer.open(), ivr.endpoint.port, target)


async def _wait_for_node(ivr: Ivr, node: str, timeout: float = 10.0) -> IvrSession:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for session in ivr.app.sessions:
            if session.timeline and session.timeline[-1].node == node:
                return session
        await asyncio.sleep(0.02)
    raise AssertionError(f"no call reached {node}")


@pytest.mark.asyncio
async def test_caller_presses_2_during_the_menu_and_is_queued_to_support(
    ivr: Ivr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    uac = await _uac(ivr, "5000")
    try:
        media_port = await uac.call()
        uac.ack()
        session = await _wait_for_node(ivr, "main_menu")
        greeting = uac.rtp.audio()
        assert len(greeting) > 8000, "less than a second of greeting"
        assert rms_dbfs(greeting) > -40, "the greeting is silent"
        loop = asyncio.get_running_loop()
        menu_started = loop.time()
        await asyncio.sleep(0.3)
        await uac.rtp.send_digits(media_port, "2")
        queued_session, action = await asyncio.wait_for(ivr.queued.get(), 5)
        # The menu prompt (about 3 s of speech) was cut short by the digit.
        assert loop.time() - menu_started < 1.5
        assert queued_session is session
        assert action == EnqueueCall(queue="support", priority=5, skills=("english",))
        assert [entry.node for entry in session.timeline] == [
            "greeting",
            "main_menu",
            "support_hours",
            "support",
        ]
        assert "open at Tue 2026-11-24 10:00 GMT" in session.timeline[2].note
        assert "queued to support (priority 5)" in caplog.text
        # Hold music follows the queueing.
        before = len(uac.rtp.audio())
        await asyncio.sleep(0.6)
        music = uac.rtp.audio()[before:]
        assert len(music) > 8000 * 0.4 and rms_dbfs(music) > -50
        bye = await uac.bye()
        assert bye is not None and bye.status == 200
        assert session.ended and not ivr.app.sessions
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_silence_retries_then_takes_the_fallback_and_hangs_up(
    ivr: Ivr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callcenter.services.ivr.session")
    uac = await _uac(ivr, "5001")
    try:
        await uac.call()
        uac.ack()
        data = await asyncio.wait_for(uac.sip.collector.queue.get(), 10)
        bye = parse_message(data)
        assert isinstance(bye, Request) and bye.method == "BYE", data[:40]
        assert bye.call_id == uac.call_id
        assert rms_dbfs(uac.rtp.audio()) > -40
        assert ivr.queued.empty()
        # The session is gone; its timeline went to the log.
        assert not ivr.app.sessions
        timeline = [r.getMessage() for r in caplog.records if ": IVR " in r.getMessage()]
        assert [line.split(": IVR ", 1)[1] for line in timeline] == [
            "flow short",
            "menu (menu): start",
            "menu (menu): no input: retry 1 of 1",
            "fallback (play): no input at menu, tries used up",
            "bye (hangup)",
        ]
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_second_call_plays_the_cached_rendering(
    ivr: Ivr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callcenter.services.ivr.session")
    rendered = ivr.app.library.renders
    assert rendered == 6 + 3  # every text of both flows, rendered once at start
    for _ in range(2):
        uac = await _uac(ivr, "5001")
        try:
            media_port = await uac.call()
            uac.ack()
            await _wait_for_node(ivr, "menu")
            uac.rtp.send_digits(media_port, "2")
            _, action = await asyncio.wait_for(ivr.queued.get(), 5)
            assert action.queue == "support"
            bye = await uac.bye()
            assert bye is not None and bye.status == 200
        finally:
            uac.sip.close()
            uac.rtp.close()
    assert ivr.app.library.renders == rendered
    assert "no input at menu, tries used up" not in caplog.text


@pytest.mark.asyncio
async def test_number_mapped_to_an_unknown_flow_is_404(ivr: Ivr) -> None:
    uac = await _uac(ivr, "5002")
    try:
        uac.sip.send(uac.invite(), ivr.endpoint.port)
        reply = await uac.sip.receive(timeout=5)
        while reply is not None and reply.status < 200:
            reply = await uac.sip.receive(timeout=5)
        assert reply is not None and reply.status == 404
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_extension_ivr_runs_the_default_flow(ivr: Ivr) -> None:
    uac = await _uac(ivr, "ivr")
    try:
        await uac.call()
        uac.ack()
        session = await _wait_for_node(ivr, "greeting")
        assert session.flow.name == "default"
        bye = await uac.bye()
        assert bye is not None and bye.status == 200
        assert session.ended
    finally:
        uac.sip.close()
        uac.rtp.close()
