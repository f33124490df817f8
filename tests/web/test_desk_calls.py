"""The agent desk on real calls: a SIP caller, the ACD, and agent pages over HTTP + WebSocket.

The whole center runs in-process (engine, IVR, ACD, call records, customers, the agent desk
and the web app served by uvicorn on a free port); the pages are `PageClient`s speaking the
documented API exactly as the browser page does. Audio is proven by tones measured at the
far end: 700 Hz from the caller found in the frames the page received, 1300 Hz from the
page found at the caller's RTP peer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.session import create_sessionmaker
from callcenter.engine.browser import BrowserPhones
from callcenter.media import PCM, dominant_frequency, rms_dbfs
from callcenter.media.g711 import ulaw_decode
from callcenter.services.accounts import AccountService
from callcenter.services.acd.queue import CallbackRecord
from callcenter.services.audit import AuditLog
from callcenter.services.demo import DEMO_SCORECARD
from callcenter.services.desk import AgentDesk
from callcenter.services.qa import QaServices
from callcenter.services.recordings import RecordingService
from callcenter.services.recordings.catalogue import RecordingCatalogue
from callcenter.services.recordings.retention import RecordingRetention
from callcenter.services.subscribers import add_user
from callcenter.services.supervisor import SupervisorDesk
from callcenter.web.app import create_app
from callcenter.web.deps import WebDeps
from callcenter.web.server import WebServer
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    UNKNOWN,
    VIP,
    Center,
    agent_phone,
    hung_up,
    open_center,
    place,
    staff_and_customers,  # noqa: F401 (an autouse fixture: amy, ben and two customers)
    until,
)

from .page_client import PageClient, tone

pytest_plugins = ["tests.engine.test_bridge"]

PASSWORDS = {
    "amy": "amy-web-password",
    "ben": "ben-web-password",
    "quinn": "quinn-web-password",
    "sam": "sam-web-password",
    "ada": "ada-web-password",
}
# The staff beyond the agents (who come from `staff_and_customers`): quinn reviews the
# support queue's recordings, sam supervises, ada administers.
QA_STAFF = {"quinn": "qa", "sam": "supervisor", "ada": "admin"}
QA_QUEUES = {"quinn": ["support"]}


@dataclass
class Desk:
    center: Center
    desk: AgentDesk
    phones: BrowserPhones
    base_url: str
    recordings: RecordingService
    supervisor: SupervisorDesk


@contextlib.asynccontextmanager
async def open_desk(
    database: AsyncEngine,
    tmp_path: Path,
    *,
    grace: float = 10.0,
    record_ivr: bool = False,
    outbound_port: int | None = None,
) -> AsyncIterator[Desk]:
    sessions = create_sessionmaker(database)
    async with sessions.begin() as session:
        for user, role in QA_STAFF.items():
            await add_user(session, username=user, role=role, realm="callcenter.test")
    accounts = AccountService(sessions)
    for user, password in PASSWORDS.items():
        await accounts.set_password(user, password)
    qa = QaServices.over(sessions)
    await qa.scorecards.create(
        name=str(DEMO_SCORECARD["name"]),
        description=str(DEMO_SCORECARD["description"]),
        questions=DEMO_SCORECARD["questions"],
        by="ada",
    )
    for user, queues in QA_QUEUES.items():
        await qa.assignments.assign(user, queues)
    phones = BrowserPhones(grace=grace)
    recordings = RecordingService(sessions, tmp_path / "recordings", flush_interval=0.2)
    await recordings.start()
    audit = AuditLog(sessions)
    async with open_center(
        database,
        tmp_path,
        phones=phones,
        recordings=recordings,
        record_ivr=record_ivr,
        audit=audit,
        outbound_port=outbound_port,
    ) as center:
        desk = AgentDesk(
            center.acd,
            phones=phones,
            customers=center.acd.customers,
            call_log=center.call_log,
            sessions=sessions,
            audit=audit,
        )
        center.acd.observer = desk
        await desk.start()
        supervisor = SupervisorDesk(desk, audit=audit)
        await supervisor.start()
        catalogue = RecordingCatalogue(sessions, recordings.recordings_dir)
        retention = RecordingRetention(sessions, recordings.recordings_dir, audit)
        app = create_app(
            WebDeps(
                accounts=accounts,
                secret_key="k" * 40,
                desk=desk,
                recordings=catalogue,
                audit=audit,
                qa=qa,
                retention=retention,
                supervisor=supervisor,
            )
        )
        server = WebServer(app, host="127.0.0.1", port=0)
        await server.start()
        try:
            base_url = f"http://127.0.0.1:{server.port}"
            yield Desk(center, desk, phones, base_url, recordings, supervisor)
        finally:
            await server.stop()
            await supervisor.stop()
            await desk.stop()
            await recordings.stop()


@contextlib.asynccontextmanager
async def page(desk: Desk, user: str) -> AsyncIterator[PageClient]:
    client = PageClient(desk.base_url)
    await client.login(user, PASSWORDS[user])
    await client.open_socket()
    await client.next_event("hello")
    try:
        yield client
    finally:
        await client.close()


def frequency(pcm: PCM) -> float:
    return dominant_frequency(pcm)


@pytest.mark.asyncio
async def test_page_takes_a_call_with_screen_pop_audio_both_ways_hold_mute_and_wrap_up(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        view = await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        assert view["state"] == "available"
        caller, engine_port = await place(desk.center, SUPPORT, VIP)

        offered = await amy.next_event("call.offered")
        call = offered["call"]
        call_id = call["call_id"]
        assert call["caller"]["number"] == VIP
        [card] = call["customers"]
        assert (card["name"], card["company"], card["tier"]) == ("Vera Important", "Big Co", "vip")
        assert VIP in card["phones"]

        await amy.ok("POST", f"/api/calls/{call_id}/answer")
        answered = await amy.next_event("call.answered")
        assert answered["call"]["on"] == "page"

        # 700 Hz from the caller reaches the page; 1300 Hz from the page reaches the caller.
        caller.rtp.send_tone(engine_port, 700.0, 1.5)
        amy.send_pcm(tone(1300.0, 1.5))
        await asyncio.sleep(1.7)
        assert abs(frequency(amy.audio()[-4000:]) - 700.0) < 20
        assert abs(frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20

        # Mute: the server stops mixing the page; the page is told the server's state.
        await amy.ok("PUT", f"/api/calls/{call_id}/mute", {"on": True})
        muted = await amy.next_event("call.muted")
        assert muted["muted"] is True
        amy.send_pcm(tone(1300.0, 1.0))
        await asyncio.sleep(0.3)
        heard = len(caller.rtp.audio())
        await asyncio.sleep(0.6)
        assert rms_dbfs(caller.rtp.audio()[heard:]) < -50, "muted page still heard"
        await amy.ok("PUT", f"/api/calls/{call_id}/mute", {"on": False})

        # Hold: the caller hears music, the page hears nobody.
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": True})
        held = await amy.next_event("call.held")
        assert held["held"] is True
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        await asyncio.sleep(0.3)
        heard, got = len(caller.rtp.audio()), len(amy.received)
        await asyncio.sleep(0.6)
        music = caller.rtp.audio()[heard:]
        assert rms_dbfs(music) > -40, "no music on hold"
        assert abs(frequency(music) - 1300.0) > 50
        assert rms_dbfs(ulaw_decode(bytes(amy.received[got:]))) < -50, "page hears a held caller"
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": False})

        # Digits from the keypad reach the caller as RFC 4733 events.
        await amy.ok("POST", f"/api/calls/{call_id}/dtmf", {"digits": "42#"})
        await until(lambda: caller.rtp.digits() == ["4", "2", "#"], what="digits at the caller")

        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        ended = await amy.next_event("call.ended")
        assert ended["by"] == "agent"
        await hung_up(caller, 3.0)

        await amy.ok(
            "POST",
            f"/api/calls/{call_id}/wrap-up",
            {"disposition": "resolved", "notes": "refund agreed", "customer_id": card["id"]},
        )
        record = await desk.center.record(call_id)
        assert record["agent"] == "amy"
        view = await desk.center.call_log.get(call_id)
        assert view is not None and (view.outcome, view.notes) == ("resolved", "refund agreed")
        assert view.customer_id == card["id"]
        customer = await amy.ok("GET", f"/api/customers/{card['id']}")
        assert customer["notes"][0]["text"] == "Call resolved: refund agreed"
        assert customer["recent_calls"][0]["call_id"] == call_id
        history = await amy.ok("GET", "/api/calls/history")
        assert history[0]["call_id"] == call_id and history[0]["outcome"] == "resolved"
        assert (await amy.ok("GET", "/api/agent"))["state"] == "available"
        caller.close()


@pytest.mark.asyncio
async def test_blind_transfer_from_one_page_to_another(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = (await amy.next_event("call.offered"))["call"]["call_id"]
        await amy.ok("POST", f"/api/calls/{call_id}/answer")
        await amy.next_event("call.answered")

        # Ben is away: the transfer waits for him with music, then rings his page.
        await amy.ok(
            "POST",
            f"/api/calls/{call_id}/transfer",
            {"target": {"kind": "agent", "value": "ben"}},
        )
        transferred = await amy.next_event("call.transferred")
        assert transferred["target"] == "agent:ben"
        await amy.next_event("call.ended")
        assert (await amy.ok("GET", "/api/agent"))["state"] == "wrap-up"
        await asyncio.sleep(0.5)
        heard = len(caller.rtp.audio())
        await asyncio.sleep(0.5)
        assert rms_dbfs(caller.rtp.audio()[heard:]) > -40, "no music while transferred"

        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        offered = await ben.next_event("call.offered")
        assert offered["call"]["call_id"] == call_id
        await ben.ok("POST", f"/api/calls/{call_id}/answer")
        await ben.next_event("call.answered")
        caller.rtp.send_tone(engine_port, 700.0, 1.2)
        ben.send_pcm(tone(1300.0, 1.2))
        await asyncio.sleep(1.4)
        assert abs(frequency(ben.audio()[-4000:]) - 700.0) < 20
        assert abs(frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20

        record = await desk.center.record(call_id)
        assert record["agent"] == "ben"
        transfer = [e for e in record["timeline"] if e["kind"] == "transferred"]
        assert transfer[0]["to"] == "agent:ben" and transfer[0]["by"] == "amy"
        caller.close()


@pytest.mark.asyncio
async def test_reload_reattaches_audio_to_the_same_call(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk:
        amy = PageClient(desk.base_url)
        await amy.login("amy", PASSWORDS["amy"])
        await amy.open_socket()
        await amy.next_event("hello")
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, UNKNOWN)
        offered = await amy.next_event("call.offered")
        call_id = offered["call"]["call_id"]
        assert offered["call"]["customers"] == []
        await amy.ok("POST", f"/api/calls/{call_id}/answer")
        await amy.next_event("call.answered")

        # The page reloads: its socket goes, a new one comes with the same session.
        await amy.close_socket()
        await asyncio.sleep(0.3)
        assert desk.center.acd.agent_status("amy").state == "on-call"
        loop = asyncio.get_running_loop()
        began = loop.time()
        before = len(amy.events)
        amy.received.clear()
        await amy.open_socket()
        hello = await amy.next_event("hello", after=before)
        assert hello["agent"]["call"]["call_id"] == call_id
        assert hello["agent"]["call"]["state"] == "talking"
        caller.rtp.send_tone(engine_port, 700.0, 2.0)
        await until(lambda: len(amy.received) >= 1600, timeout=2.0, what="audio after reload")
        assert loop.time() - began < 2.0
        amy.send_pcm(tone(1300.0, 1.2))
        await asyncio.sleep(1.4)
        assert abs(frequency(amy.audio()[-4000:]) - 700.0) < 20
        assert abs(frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20

        # Unknown caller: the agent creates the customer inline, linked to the call.
        card = await amy.ok(
            "POST",
            "/api/customers",
            {"name": "New Person", "phone": UNKNOWN, "call_id": call_id},
        )
        matched = await amy.next_event("customer.matched")
        assert matched["customer"]["id"] == card["id"]
        assert UNKNOWN in card["phones"]
        await amy.close()
        caller.close()


@pytest.mark.asyncio
async def test_reject_sends_the_call_to_the_next_agent(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, _ = await place(desk.center, SUPPORT, REGULAR)
        call_id = (await amy.next_event("call.offered"))["call"]["call_id"]
        await amy.ok("POST", f"/api/calls/{call_id}/reject")
        withdrawn = await amy.next_event("call.offer_withdrawn")
        assert withdrawn["reason"] == "rejected"
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        assert (await ben.next_event("call.offered"))["call"]["call_id"] == call_id
        # Not amy's call any more: her answer is refused.
        refused = await amy.call("POST", f"/api/calls/{call_id}/answer")
        assert refused.status_code == 404
        caller.close()


async def answer_next(page: PageClient) -> str:
    """Answer the next offer on `page`; its call id."""
    call_id = (await page.next_event("call.offered", after=len(page.events) - 1))["call"]["call_id"]
    await page.ok("POST", f"/api/calls/{call_id}/answer")
    return str(call_id)


@pytest.mark.asyncio
async def test_warm_transfer_consults_then_completes_and_a_cancel_returns_to_the_caller(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = (await amy.next_event("call.offered"))["call"]["call_id"]
        await amy.ok("POST", f"/api/calls/{call_id}/answer")
        await amy.next_event("call.answered")
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        ben_answers = asyncio.create_task(answer_next(ben))
        # First consult: ben answers, amy and ben talk while the caller hears music; cancel.
        target = {"target": {"kind": "agent", "value": "ben"}}
        await amy.ok("POST", f"/api/calls/{call_id}/consult", target)
        assert await ben_answers == call_id
        talking = await amy.next_event("call.consult", after=0)
        assert talking["state"] in ("ringing", "talking")
        heard = len(caller.rtp.audio())
        amy.send_pcm(tone(1300.0, 1.0))
        ben.send_pcm(tone(900.0, 1.0))
        await asyncio.sleep(1.2)
        assert abs(frequency(ben.audio()[-4000:]) - 1300.0) < 20, "ben does not hear amy"
        assert abs(frequency(amy.audio()[-4000:]) - 900.0) < 20, "amy does not hear ben"
        music = caller.rtp.audio()[heard:]
        assert rms_dbfs(music) > -40, "no music for the caller during the consultation"
        assert min(abs(frequency(music) - f) for f in (900.0, 1300.0)) > 50, "caller overheard"
        await amy.ok("POST", f"/api/calls/{call_id}/consult/cancel")
        await ben.next_event("call.ended")
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        await asyncio.sleep(1.1)
        assert abs(frequency(amy.audio()[-4000:]) - 700.0) < 20, "amy not back with the caller"

        # Second consult: complete; the caller and ben talk, amy wraps up.
        await ben.ok("POST", f"/api/calls/{call_id}/wrap-up", {"disposition": "information"})
        await until(lambda: desk.center.acd.agent_status("ben").state == "available")
        ben_answers = asyncio.create_task(answer_next(ben))
        await amy.ok("POST", f"/api/calls/{call_id}/consult", target)
        await ben_answers
        await amy.ok("POST", f"/api/calls/{call_id}/consult/complete")
        transferred = await amy.next_event("call.transferred")
        assert transferred["kind"] == "warm"
        await until(lambda: desk.center.acd.agent_status("amy").state == "wrap-up")
        caller.rtp.send_tone(engine_port, 700.0, 1.2)
        ben.send_pcm(tone(1300.0, 1.2))
        await asyncio.sleep(1.4)
        assert abs(frequency(ben.audio()[-4000:]) - 700.0) < 20
        assert abs(frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        record = await desk.center.record(call_id)
        assert record["agent"] == "ben" and record["disposition"] == "answered"
        kinds = [e["kind"] for e in record["timeline"]]
        assert "consult-cancelled" in kinds and "consult-completed" in kinds
        caller.close()


@pytest.mark.asyncio
async def test_one_agent_with_a_page_and_a_desk_phone_rings_on_both_and_answers_on_either(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        phone = await agent_phone(desk.center, "amy")
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, VIP)
        invite = await phone.next_request("INVITE")
        offered = await amy.next_event("call.offered")
        call_id = offered["call"]["call_id"]
        phone.reply(invite, 180)
        phone.answer(invite)  # the desk phone answers: the page stops ringing and shows it
        answered = await amy.next_event("call.answered")
        assert answered["call"]["on"] == "phone"
        assert desk.center.acd.agent_status("amy").state == "on-call"
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 1.0)
        await asyncio.sleep(1.2)
        assert abs(frequency(phone.rtp.audio()[-4000:]) - 700.0) < 20
        assert abs(frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20
        # The page controls the call the phone answered: hold gives the caller music.
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": True})
        phone.rtp.send_tone(phone.remote_rtp_port, 1300.0, 1.0)
        await asyncio.sleep(0.3)
        heard = len(caller.rtp.audio())
        await asyncio.sleep(0.6)
        music = caller.rtp.audio()[heard:]
        assert rms_dbfs(music) > -40 and abs(frequency(music) - 1300.0) > 50
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await phone.next_request("BYE")
        await hung_up(caller, 3.0)
        assert (await amy.next_event("call.ended"))["by"] == "agent"
        caller.close()
        phone.close()


@pytest.mark.asyncio
async def test_consultations_end_cleanly_whoever_ends_them(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """The consulted agent's hang-up ends only the consultation; a cancel while it rings is
    not a missed call for the consulted agent; mute holds in the consultation too."""
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await amy.next_event("call.answered")
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        target = {"target": {"kind": "agent", "value": "ben"}}

        # Cancelled while ben's page rings: ben is available again, not away('missed').
        consult = asyncio.create_task(amy.call("POST", f"/api/calls/{call_id}/consult", target))
        await ben.next_event("call.offered")
        await amy.ok("POST", f"/api/calls/{call_id}/consult/cancel")
        assert (await consult).status_code == 409
        await until(lambda: acd.agent_status("ben").state == "available", what="ben free")
        await until(lambda: acd.agent_status("amy").state == "on-call")

        # Muted, then consulting: ben must not hear amy.
        await amy.ok("PUT", f"/api/calls/{call_id}/mute", {"on": True})
        ben_answers = asyncio.create_task(answer_next(ben))
        await amy.ok("POST", f"/api/calls/{call_id}/consult", target)
        await ben_answers
        amy.send_pcm(tone(1300.0, 1.0))
        await asyncio.sleep(0.3)
        got = len(ben.received)
        await asyncio.sleep(0.6)
        assert rms_dbfs(ulaw_decode(bytes(ben.received[got:]))) < -50, "ben hears a muted amy"
        # Ben may not hold or transfer amy's caller; his hang-up ends only the consultation.
        refused = await ben.call("PUT", f"/api/calls/{call_id}/hold", {"on": True})
        assert refused.status_code == 409
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")
        await until(lambda: acd.agent_status("ben").state == "wrap-up", what="ben wraps up")
        assert acd.agent_status("amy").state == "on-call"
        await amy.ok("PUT", f"/api/calls/{call_id}/mute", {"on": False})
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        await asyncio.sleep(1.1)
        assert abs(frequency(amy.audio()[-4000:]) - 700.0) < 20, "amy not back with the caller"

        # Wrap-up without a customer keeps the record's; an away asked for during the call
        # is where the agent goes after wrap-up.
        await amy.ok("PUT", "/api/agent/state", {"state": "away", "reason": "Lunch"})
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        await amy.ok("POST", f"/api/calls/{call_id}/wrap-up", {"disposition": "information"})
        status = acd.agent_status("amy")
        assert (status.state, status.reason) == ("away", "Lunch")
        caller.close()


@pytest.mark.asyncio
async def test_a_page_gone_for_good_ends_its_call(database: AsyncEngine, tmp_path: Path) -> None:
    async with open_desk(database, tmp_path, grace=0.5) as desk:
        amy = PageClient(desk.base_url)
        await amy.login("amy", PASSWORDS["amy"])
        await amy.open_socket()
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, _ = await place(desk.center, SUPPORT, REGULAR)
        await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        await amy.close()  # the tab closed and never came back
        await hung_up(caller, 4.0)
        await until(lambda: desk.center.acd.agent_status("amy").state == "wrap-up")
        caller.close()


@pytest.mark.asyncio
async def test_a_password_change_closes_the_agents_socket(
    database: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("callcenter.web.ws.SESSION_RECHECK", 0.1)
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        assert amy.socket is not None
        accounts = AccountService(create_sessionmaker(database))
        await accounts.set_password("amy", "a-brand-new-password")
        socket = amy.socket
        await until(lambda: socket.close_code is not None, what="the socket closed")
        assert socket.close_code == 4401
        refused = await amy.call("GET", "/api/agent")
        assert refused.status_code == 401


@pytest.mark.asyncio
async def test_a_callback_waits_for_an_agent_with_a_desk_phone(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """A callback rings the agent's desk phone first (then dials the customer from that
    call): an agent with only the page is not offered it, and is not marked missed."""
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        record = CallbackRecord(
            call_id="asked-earlier",
            queue="support",
            number=REGULAR,
            entered_at=acd.clock() - 60,
            priority=0,
            tier_rank=0,
            required_skills={},
            requested_at=acd.clock() - 30,
        )
        stored = await desk.center.callbacks.add(record)
        acd._queue_callback(stored, acd.clock())
        await asyncio.sleep(1.5)  # routing passes and a reconcile
        assert acd.agent_status("amy").state == "available"
        assert [c.call_id for c in acd.router.waiting("support")] == [f"callback:{stored.id}"]
        assert not [e for e in amy.events if e["type"] == "call.offered"]


@pytest.mark.asyncio
async def test_several_customers_share_a_number_and_the_agent_chooses(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        spouse = await desk.center.acd.customers.create(
            name="Val Important", company="Big Co", tier="gold", phones=[VIP]
        )
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, _ = await place(desk.center, SUPPORT, VIP)
        offered = (await amy.next_event("call.offered"))["call"]
        names = [c["name"] for c in offered["customers"]]
        assert names == ["Vera Important", "Val Important"]  # the higher tier first
        assert offered["customer_id"] is None  # not guessed: the agent chooses
        call_id = offered["call_id"]
        # Another agent's call is not hers to label.
        refused = await amy.call("POST", "/api/calls/not-hers/customer", {"customer_id": 1})
        assert refused.status_code == 404
        await amy.ok("POST", f"/api/calls/{call_id}/answer")
        card = await amy.ok("POST", f"/api/calls/{call_id}/customer", {"customer_id": spouse.id})
        assert card["name"] == "Val Important"
        matched = await amy.next_event("customer.matched")
        assert matched["customer"]["id"] == spouse.id
        view = await amy.ok("GET", "/api/agent")
        assert view["call"]["customer_id"] == spouse.id
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        record = await desk.center.record(call_id)
        assert record["customer_id"] == spouse.id
        caller.close()
