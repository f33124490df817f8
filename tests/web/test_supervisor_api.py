"""The supervisor dashboard's API on real calls: the live picture, monitoring, the audit log.

The whole center runs in-process (see test_desk_calls.py); agent pages and the supervisor's
dashboard are `PageClient`s speaking the documented API (docs/supervisor-api.md), the caller
a SIP phone with an RTP peer, the supervisor's phone a registered scripted phone and the
outside number a scripted phone behind the outbound trunk. Every party sends its own tone,
all the time, and each mode is proven by measuring, at every ear, which tones are there and
which are not: listen (hears all, heard by none), whisper (heard by the agent only, the
owner or a named one), barge (a full party), switched in place: the same party, the same
page call, no re-dial.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.session import create_sessionmaker
from callcenter.media import PCM
from callcenter.services.accounts import AccountService
from callcenter.services.subscribers import add_user
from tests.engine.phone import ScriptedPhone
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    VIP,
    _bye_from_callee,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (an autouse fixture: amy, ben and two customers)
    until,
)
from tests.engine.test_bridge import PASSWORD, REALM

from .page_client import PageClient, tone
from .test_desk_calls import PASSWORDS, Desk, answer_next, open_desk, page
from .tones import ABSENT, HEARD, amplitude

pytest_plugins = ["tests.engine.test_bridge"]

CALLER, AMY, BEN, SAM = 650.0, 1230.0, 1870.0, 2530.0
NAMES = {CALLER: "caller", AMY: "amy", BEN: "ben", SAM: "supervisor"}
SETTLE = 0.5  # seconds for a change to reach every jitter buffer before listening
WINDOW = 0.8  # seconds listened to per mode
MONITOR = "/api/supervisor/monitor"
SUPERVISOR_WS = "/api/supervisor/ws"


Ears = dict[str, Callable[[], PCM]]


async def hear(mode: str, ears: Ears, expected: dict[str, set[float]]) -> dict[str, Any]:
    """Listen at each ear of `expected` for WINDOW seconds (after SETTLE): exactly its tones
    are there. Returns the measured amplitudes, for the record."""
    await asyncio.sleep(SETTLE)
    for attempt in range(3):
        marks = {where: len(ears[where]()) for where in expected}
        await asyncio.sleep(WINDOW)
        measured: dict[str, Any] = {}
        missing: list[str] = []
        for where, tones in expected.items():
            pcm = ears[where]()[marks[where] :]
            assert len(pcm) >= 8000 * WINDOW * 0.8, f"{mode}: {where} received too little audio"
            levels = {name: round(amplitude(pcm, f)) for f, name in NAMES.items()}
            measured[where] = levels
            for frequency, name in NAMES.items():
                level = amplitude(pcm, frequency)
                if frequency not in tones:
                    # Never measured again: a tone heard where it must not be fails at once.
                    assert level < ABSENT, f"{mode}: {where} hears {name}: {levels}"
                elif level <= HEARD:
                    missing.append(f"{where} does not hear {name}: {levels}")
        if not missing:
            break
        # A tone short of its level (a loaded machine's audio gap): listened to again, at
        # most twice.
        assert attempt < 2, f"{mode}: {missing}"
    print(f"{mode}: {measured}")
    return measured


@contextlib.asynccontextmanager
async def dashboard(desk: Desk, user: str = "sam") -> AsyncIterator[PageClient]:
    """The supervisor's dashboard page: logged in, its socket open, hello received."""
    client = PageClient(desk.base_url)
    await client.login(user, PASSWORDS.get(user) or f"{user}-web-password")
    await client.open_socket(SUPERVISOR_WS)
    await client.next_event("supervisor.hello")
    try:
        yield client
    finally:
        await client.close()


async def event_where(
    client: PageClient, kind: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """The first event of `kind` (from the start) for which `predicate` holds, waiting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for event in client.events:
            if event.get("type") == kind and predicate(event):
                return event
        left = deadline - loop.time()
        assert left > 0, f"no matching {kind} within {timeout} s"
        client.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.changed.wait(), left)


def call_of(event: dict[str, Any], call_id: str) -> dict[str, Any] | None:
    calls = event["calls"] if "calls" in event else event["live"]["calls"]
    return next((c for c in calls if c["call_id"] == call_id), None)


def queue_of(event: dict[str, Any], queue: str) -> dict[str, Any]:
    queues = event["queues"] if "queues" in event else event["live"]["queues"]
    return next(q for q in queues if q["queue"] == queue)


async def audit_of(client: PageClient, call_id: str) -> list[dict[str, Any]]:
    """The call's audit entries, oldest first."""
    entries = await client.ok("GET", f"/api/audit?subject=call:{call_id}&limit=50")
    return list(reversed(entries))


@pytest.mark.asyncio
async def test_listen_whisper_barge_switch_in_place_and_leave_every_step_audited(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
        dashboard(desk) as sam,
    ):
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: acd.agent_status("amy").state == "on-call")

        # The dashboard shows the call, its queue and its agent.
        shown = await event_where(
            sam, "supervisor.calls", lambda e: (call_of(e, call_id) or {}).get("state") == "talking"
        )
        call = call_of(shown, call_id)
        assert call is not None
        assert (call["queue"], call["agent"], call["caller"]["number"]) == (
            "support",
            "amy",
            REGULAR,
        )
        assert [p["label"] for p in call["parties"]] == ["agent:amy"]

        # Everyone talks, all the time, from here on.
        caller.rtp.send_tone(engine_port, CALLER, 60.0)
        amy.send_pcm(tone(AMY, 1.0), loop_forever=True)
        ben.send_pcm(tone(BEN, 1.0), loop_forever=True)
        sam.send_pcm(tone(SAM, 1.0), loop_forever=True)
        ears: Ears = {
            "caller": caller.rtp.audio,
            "amy": amy.audio,
            "ben": ben.audio,
            "supervisor": sam.audio,
        }

        # Refused before anything is audited or rung.
        refused = await amy.call("POST", MONITOR, {"call_id": call_id, "mode": "listen"})
        assert refused.status_code == 403, "an agent may not monitor"
        unknown = await sam.call("POST", MONITOR, {"call_id": "no-such-call", "mode": "listen"})
        assert unknown.status_code == 404
        bad = await sam.call(
            "POST",
            MONITOR,
            {"call_id": call_id, "mode": "listen", "via": "number", "number": "12ab"},
        )
        assert bad.status_code == 400, bad.text
        nobody = await sam.call(
            "POST", MONITOR, {"call_id": call_id, "mode": "whisper", "whisper_to": "cara"}
        )
        assert nobody.status_code == 404, nobody.text
        no_socket = PageClient(desk.base_url)
        await no_socket.login("ada", PASSWORDS["ada"])  # an admin may; without a page socket
        refused = await no_socket.call("POST", MONITOR, {"call_id": call_id, "mode": "listen"})
        assert refused.status_code == 409, refused.text
        await no_socket.close()

        loop = asyncio.get_running_loop()
        asked = loop.time()
        joined = await sam.ok(
            "POST", MONITOR, {"call_id": call_id, "mode": "listen", "via": "page"}
        )
        print(f"listening {(loop.time() - asked) * 1000:.0f} ms after the request")
        assert (joined["call_id"], joined["mode"], joined["via"]) == (call_id, "listen", "page")
        party_id = joined["party_id"]
        page_call = desk.phones.phone("sam").current
        assert page_call is not None
        changed = await sam.next_event("monitor.changed")
        assert changed["change"] == "joined" and changed["monitoring"]["party_id"] == party_id
        await hear(
            "listen",
            ears,
            {"caller": {AMY}, "amy": {CALLER}, "supervisor": {CALLER, AMY}},
        )
        again = await sam.call("POST", MONITOR, {"call_id": call_id, "mode": "barge"})
        assert again.status_code == 409, "a second monitored call"

        # Whisper: the same party, the same page call (no re-dial); only the agent hears.
        switched = await sam.ok("PUT", MONITOR, {"mode": "whisper"})
        assert (switched["party_id"], switched["mode"]) == (party_id, "whisper")
        assert desk.phones.phone("sam").current is page_call
        await hear(
            "whisper",
            ears,
            {"caller": {AMY}, "amy": {CALLER, SAM}, "supervisor": {CALLER, AMY}},
        )
        told = await event_where(
            amy, "call.parties", lambda e: any(p["mode"] == "whisper" for p in e["parties"])
        )
        assert [p["label"] for p in told["parties"]] == ["supervisor:sam"]

        # Barge: a full party.
        switched = await sam.ok("PUT", MONITOR, {"mode": "barge"})
        assert switched["party_id"] == party_id
        assert desk.phones.phone("sam").current is page_call
        await hear(
            "barge",
            ears,
            {"caller": {AMY, SAM}, "amy": {CALLER, SAM}, "supervisor": {CALLER, AMY}},
        )

        # amy brings ben in: a conference; the supervisor whispers to ben alone.
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        target = {"target": {"kind": "agent", "value": "ben"}, "join": True}
        adding = asyncio.create_task(amy.ok("POST", f"/api/calls/{call_id}/parties", target))
        await ben.next_event("call.offered")
        await ben.ok("POST", f"/api/calls/{call_id}/answer")
        await adding
        live = await sam.ok("GET", "/api/supervisor/live")
        call = call_of(live, call_id)
        assert call is not None and call["state"] == "conference"
        assert {(p["label"], p["role"], p["mode"]) for p in call["parties"]} == {
            ("agent:amy", "owner", "full"),
            ("agent:ben", "party", "full"),
            ("supervisor:sam", "monitor", "barge"),
        }
        assert call["monitors"] == ["sam"] and live["monitoring"]["mode"] == "barge"
        switched = await sam.ok("PUT", MONITOR, {"mode": "whisper", "whisper_to": "ben"})
        assert (switched["party_id"], switched["whisper_to"]) == (party_id, "ben")
        await hear(
            "whisper to ben",
            ears,
            {
                "caller": {AMY, BEN},
                "amy": {CALLER, BEN},
                "ben": {CALLER, AMY, SAM},
                "supervisor": {CALLER, AMY, BEN},
            },
        )
        live = await sam.ok("GET", "/api/supervisor/live")
        monitor = next(p for p in call_of(live, call_id)["parties"] if p["role"] == "monitor")  # type: ignore[index]
        assert (monitor["mode"], monitor["whisper_to"]) == ("whisper", "agent:ben")

        # Leave: the page call ends; nobody hears the supervisor any more.
        left = await sam.call("DELETE", MONITOR)
        assert left.status_code == 204
        assert desk.phones.phone("sam").current is None
        await event_where(sam, "monitor.changed", lambda e: e["change"] == "left")
        await hear("left", ears, {"caller": {AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}})
        assert (await sam.call("DELETE", MONITOR)).status_code == 409, "nothing to leave"

        entries = await audit_of(sam, call_id)
        assert [(e["actor"], e["action"]) for e in entries] == [
            ("sam", "monitor.listen"),
            ("sam", "monitor.whisper"),
            ("sam", "monitor.barge"),
            ("sam", "monitor.whisper"),
            ("sam", "monitor.leave"),
        ], "refused requests are not audited; each action is, once"
        details = [e["detail"] for e in entries]
        assert details[0] == {"mode": "listen", "via": "page"}
        assert details[1] == {"mode": "whisper", "via": "page", "from": "listen"}
        assert details[2] == {"mode": "barge", "via": "page", "from": "whisper"}
        assert details[3] == {
            "mode": "whisper",
            "via": "page",
            "from": "barge",
            "whisper_to": "ben",
        }
        assert details[4] == {"mode": "whisper", "via": "page", "whisper_to": "ben"}

        # The call record's timeline says when a supervisor was on the call, too.
        record = desk.center.call_log.current(call_id)
        assert record is not None
        monitoring = [
            (e["kind"], e["mode"]) for e in record.timeline if str(e["kind"]).startswith("monitor-")
        ]
        assert monitoring == [
            ("monitor-joined", "listen"),
            ("monitor-switched", "whisper"),
            ("monitor-switched", "barge"),
            ("monitor-switched", "whisper"),
            ("monitor-left", "whisper"),
        ]

        for client in (amy, ben, sam):
            await client.stop_sending()
        caller.close()


@pytest.mark.asyncio
async def test_live_picture_queue_stats_and_monitoring_from_a_number_and_a_phone(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """The picture over the socket (a waiting call, then talking; the service level after an
    answer and an abandon), and a supervisor called on an outside number through the trunk
    and on a registered phone (whose hang-up ends the monitoring, audited)."""
    sessions = create_sessionmaker(database)
    async with sessions.begin() as session:
        await add_user(
            session, username="sue", role="supervisor", realm=REALM, sip_password=PASSWORD
        )
    await AccountService(sessions).set_password("sue", "sue-web-password")
    outside = await ScriptedPhone.open("outside", 0)  # the carrier's side of the trunk
    async with (
        open_desk(database, tmp_path, outbound_port=outside.sip.port) as desk,
        page(desk, "amy") as amy,
        dashboard(desk) as sam,
    ):
        outside.server_port = desk.center.port
        hello = sam.events[0]
        support = queue_of(hello, "support")
        assert (support["answered"], support["abandoned"], support["service_level"]) == (0, 0, None)
        assert support["service_level_seconds"] == 20.0

        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        waiting = await event_where(
            sam, "supervisor.calls", lambda e: any(c["state"] == "waiting" for c in e["calls"])
        )
        [call] = waiting["calls"]
        call_id = call["call_id"]
        assert (call["queue"], call["agent"], call["parties"]) == ("support", None, [])
        queued = await event_where(
            sam, "queue.stats", lambda e: queue_of(e, "support")["waiting"] == 1
        )
        assert queue_of(queued, "support")["longest_wait_seconds"] >= 0
        refused = await sam.call("POST", MONITOR, {"call_id": call_id, "mode": "listen"})
        assert refused.status_code == 409, "a waiting call cannot be monitored"

        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        assert await answer_next(amy) == call_id
        stats = await event_where(
            sam, "queue.stats", lambda e: queue_of(e, "support")["answered"] == 1
        )
        assert queue_of(stats, "support")["service_level"] == 100.0
        await event_where(
            sam,
            "supervisor.agents",
            lambda e: any(
                a["username"] == "amy" and a["state"] == "on-call" and a["call_id"] == call_id
                for a in e["agents"]
            ),
        )
        talking = await event_where(
            sam, "supervisor.calls", lambda e: (call_of(e, call_id) or {}).get("agent") == "amy"
        )
        assert call_of(talking, call_id)["state"] == "talking"  # type: ignore[index]

        # A second caller gives up while waiting: half the calls were answered in time.
        second, _ = await place(desk.center, SUPPORT, VIP)
        await event_where(sam, "supervisor.calls", lambda e: len(e["calls"]) == 2)
        second.sip.send(second.request("BYE", 2), desk.center.port)
        stats = await event_where(
            sam, "queue.stats", lambda e: queue_of(e, "support")["abandoned"] == 1
        )
        assert queue_of(stats, "support")["service_level"] == 50.0
        second.close()

        # The supervisor on an outside number: the engine calls it through the trunk.
        caller.rtp.send_tone(engine_port, CALLER, 60.0)
        amy.send_pcm(tone(AMY, 1.0), loop_forever=True)
        number = "+15550100"
        joining = asyncio.create_task(
            sam.ok(
                "POST",
                MONITOR,
                {"call_id": call_id, "mode": "listen", "via": "number", "number": number},
            )
        )
        invite = await outside.next_request("INVITE")
        assert number.lstrip("+") in str(invite.uri)
        outside.answer(invite)
        joined = await joining
        assert (joined["via"], joined["number"]) == ("number", number)
        outside.rtp.send_tone(outside.remote_rtp_port, SAM, 60.0)
        ears: Ears = {"caller": caller.rtp.audio, "amy": amy.audio, "supervisor": outside.rtp.audio}
        await hear(
            "listen on a number",
            ears,
            {"caller": {AMY}, "amy": {CALLER}, "supervisor": {CALLER, AMY}},
        )
        await sam.ok("PUT", MONITOR, {"mode": "barge"})
        await hear(
            "barge on a number",
            ears,
            {"caller": {AMY, SAM}, "amy": {CALLER, SAM}, "supervisor": {CALLER, AMY}},
        )
        # On a phone the keypad switches, as on a PBX: 5 whisper, 4 listen (audited alike).
        seen = len(sam.events)
        await outside.rtp.send_digits(outside.remote_rtp_port, "5")
        await sam.next_event(
            "monitor.changed", after=seen, where=lambda e: e["monitoring"]["mode"] == "whisper"
        )
        await hear(
            "whisper by keypad",
            ears,
            {"caller": {AMY}, "amy": {CALLER, SAM}, "supervisor": {CALLER, AMY}},
        )
        seen = len(sam.events)
        await outside.rtp.send_digits(outside.remote_rtp_port, "4")
        await sam.next_event(
            "monitor.changed", after=seen, where=lambda e: e["monitoring"]["mode"] == "listen"
        )
        await sam.ok("DELETE", MONITOR)
        bye = await outside.next_request("BYE")
        outside.reply(bye, 200)

        # sam has no registered phone; sue has: the engine rings it.
        refused = await sam.call(
            "POST", MONITOR, {"call_id": call_id, "mode": "listen", "via": "phone"}
        )
        assert refused.status_code == 409, refused.text
        phone = await ScriptedPhone.open("sue", desk.center.port)
        await phone.register(PASSWORD)
        sue = PageClient(desk.base_url)
        await sue.login("sue", "sue-web-password")
        joining = asyncio.create_task(
            sue.ok("POST", MONITOR, {"call_id": call_id, "mode": "whisper", "via": "phone"})
        )
        invite = await phone.next_request("INVITE")
        phone.answer(invite)
        assert (await joining)["via"] == "phone"
        phone.rtp.send_tone(phone.remote_rtp_port, SAM, 60.0)
        ears["supervisor"] = phone.rtp.audio
        await hear(
            "whisper from a phone",
            ears,
            {"caller": {AMY}, "amy": {CALLER, SAM}, "supervisor": {CALLER, AMY}},
        )
        # The supervisor hangs up their phone: the monitoring ends, and the log says why.
        phone.sip.send(_bye_from_callee(invite, phone, desk.center.port), desk.center.port)
        await until(lambda: desk.supervisor.monitoring("sue") is None, what="sue's monitoring ends")
        await hear("after the hang-up", ears, {"caller": {AMY}, "amy": {CALLER}})

        async def entries() -> list[tuple[str, str, dict[str, Any]]]:
            return [(e["actor"], e["action"], e["detail"]) for e in await audit_of(sam, call_id)]

        for _ in range(50):
            if len(await entries()) >= 7:
                break
            await asyncio.sleep(0.1)
        assert await entries() == [
            ("sam", "monitor.listen", {"mode": "listen", "via": "number", "number": number}),
            (
                "sam",
                "monitor.barge",
                {"mode": "barge", "via": "number", "from": "listen", "number": number},
            ),
            (
                "sam",
                "monitor.whisper",
                {"mode": "whisper", "via": "number", "from": "barge", "number": number},
            ),
            (
                "sam",
                "monitor.listen",
                {"mode": "listen", "via": "number", "from": "whisper", "number": number},
            ),
            ("sam", "monitor.leave", {"mode": "listen", "via": "number", "number": number}),
            ("sue", "monitor.whisper", {"mode": "whisper", "via": "phone"}),
            ("sue", "monitor.leave", {"mode": "whisper", "via": "phone", "why": "hung-up"}),
        ]

        await amy.stop_sending()
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        await sue.close()
        caller.close()
        phone.close()
    outside.close()


@pytest.mark.asyncio
async def test_a_newer_dashboard_takes_over_and_a_closed_page_stops_listening(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path, grace=0.5) as desk, page(desk, "amy") as amy:
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, _ = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        async with dashboard(desk) as first:
            await first.ok("POST", MONITOR, {"call_id": call_id, "mode": "listen"})
            async with dashboard(desk) as second:
                socket = first.socket
                assert socket is not None
                await until(lambda: socket.close_code is not None, what="the first socket closed")
                assert socket.close_code == 4409
                hello = second.events[0]
                assert hello["live"]["monitoring"]["call_id"] == call_id, "the reload keeps it"
                assert desk.supervisor.monitoring("sam") is not None
            # Both sockets gone for longer than the grace: the page was closed.
            await until(lambda: desk.supervisor.monitoring("sam") is None, what="monitoring ends")
            assert desk.phones.phone("sam").current is None
            for _ in range(30):
                entries = await audit_of(first, call_id)
                if len(entries) == 2:
                    break
                await asyncio.sleep(0.1)
            assert [(e["action"], e["detail"].get("why")) for e in entries] == [
                ("monitor.listen", None),
                ("monitor.leave", "page-closed"),
            ]
        caller.close()
