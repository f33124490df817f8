"""Conferences on real calls: the tone matrix.

A SIP caller, agent pages amy (the owner) and ben (added to the conference) and a supervisor's
page leg each send their own tone, all at once and all the time. For every mode (full, listen,
whisper, barge, muted, hold) the test listens at every leg and at both channels of the call's
recording file and asserts exactly which tones are audible there and which are absent. The
frequencies are chosen so that no one is a harmonic of another, and a tone counts as heard
only well above the noise of G.711 and of the others' tones.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.engine.connection import Connection
from callcenter.media import PCM, rms_dbfs
from callcenter.media.g711 import ulaw_decode, ulaw_encode
from tests.engine.phone import ScriptedPhone
from tests.engine.test_acd_calls import (
    REGULAR,
    SUPPORT,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (an autouse fixture: amy, ben and two customers)
    until,
)

from .page_client import tone
from .test_desk_calls import answer_next, open_desk, page
from .test_recording_calls import channels, recording_of
from .tones import ABSENT, HEARD, amplitude

pytest_plugins = ["tests.engine.test_bridge"]

CALLER, AMY, BEN, SAM = 650.0, 1230.0, 1870.0, 2530.0
NAMES = {CALLER: "caller", AMY: "amy", BEN: "ben", SAM: "sam"}
SETTLE = 0.5  # seconds for a change to reach every jitter buffer before listening
WINDOW = 0.8  # seconds listened to per mode

HEADER = struct.Struct("!BBHI")


def heard(pcm: PCM) -> dict[str, float]:
    return {NAMES[f]: round(amplitude(pcm, f)) for f in NAMES}


def check(where: str, mode: str, pcm: PCM, expected: set[float]) -> None:
    assert len(pcm) >= 8000 * WINDOW * 0.8, f"{mode}: {where} received too little audio"
    levels = heard(pcm)
    for frequency, name in NAMES.items():
        level = amplitude(pcm, frequency)
        if frequency in expected:
            assert level > HEARD, f"{mode}: {where} does not hear {name}: {levels}"
        else:
            assert level < ABSENT, f"{mode}: {where} hears {name}: {levels}"


class PageLeg:
    """The supervisor's page phone seen from the page's side: it sends a tone as the page's
    microphone frames and keeps what the engine plays to it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.sender: asyncio.Task[None] | None = None

    def sink(self, data: bytes) -> None:
        self.received += data[HEADER.size :]

    def audio(self) -> PCM:
        return ulaw_decode(bytes(self.received))

    def start(self, receive: Callable[[bytes], None], pcm: PCM) -> None:
        async def send() -> None:
            loop = asyncio.get_running_loop()
            start, n = loop.time(), 0
            while True:
                frame = pcm[(n * 160) % len(pcm) :][:160]
                if len(frame) < 160:
                    frame = pcm[:160]
                receive(HEADER.pack(1, 0, 0, n & 0xFFFFFFFF) + ulaw_encode(frame))
                n += 1
                await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))

        self.sender = asyncio.create_task(send())

    async def stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)


@pytest.mark.asyncio
async def test_tone_matrix_of_a_conference_in_every_mode(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: acd.agent_status("amy").state == "on-call")
        waiter = acd.waiters[call_id]
        connection = acd.bridges.connection(waiter.call)
        assert isinstance(connection, Connection)

        # amy adds ben straight into the conference; while ben rings the caller hears music
        # and not amy.
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        amy.send_pcm(tone(AMY, 3600.0), loop_forever=True)
        ringing = len(caller.rtp.audio())
        target = {"target": {"kind": "agent", "value": "ben"}, "join": True}
        adding = asyncio.create_task(amy.ok("POST", f"/api/calls/{call_id}/parties", target))
        offered = await ben.next_event("call.offered")
        assert offered["call"]["call_id"] == call_id
        await asyncio.sleep(1.2)
        music = caller.rtp.audio()[ringing:]
        assert rms_dbfs(music) > -40, "the caller hears no music while ben rings"
        assert amplitude(music[-6000:], AMY) < ABSENT, "the caller hears amy while ben rings"
        await ben.ok("POST", f"/api/calls/{call_id}/answer")
        added = await adding
        assert added["party"]["label"] == "agent:ben" and added["party"]["mode"] == "full"
        reaching = await amy.next_event("call.parties", after=0)
        assert reaching["reaching"] == "agent:ben" and reaching["parties"] == []
        await amy.next_event(
            "call.parties",
            where=lambda e: (
                [p["label"] for p in e["parties"]] == ["agent:ben"] and e["reaching"] is None
            ),
        )
        ben_view = await ben.next_event("call.parties", after=0)
        assert ben_view["owner"] is False
        assert [p["label"] for p in ben_view["parties"]] == ["agent:amy"]

        # Everyone talks, all the time, from here on.
        caller.rtp.send_tone(engine_port, CALLER, 60.0)
        ben.send_pcm(tone(BEN, 3600.0), loop_forever=True)
        sam = PageLeg()
        sam_phone = desk.phones.phone("sam")
        sam_phone.attach(sam.sink)
        sam.start(sam_phone.leg.receive, tone(SAM, 1.0))

        recording = waiter.recording
        assert recording is not None
        windows: list[tuple[str, int, int]] = []

        async def listen(mode: str, expected: dict[str, set[float]]) -> None:
            await asyncio.sleep(SETTLE)
            marks = {
                "caller": len(caller.rtp.audio()),
                "amy": len(amy.audio()),
                "ben": len(ben.audio()),
                "sam": len(sam.audio()),
            }
            first = recording.frames
            await asyncio.sleep(WINDOW)
            last = recording.frames
            windows.append((mode, first, last))
            pcm = {
                "caller": caller.rtp.audio()[marks["caller"] :],
                "amy": amy.audio()[marks["amy"] :],
                "ben": ben.audio()[marks["ben"] :],
                "sam": sam.audio()[marks["sam"] :],
            }
            for where, tones in expected.items():
                check(where, mode, pcm[where], tones)

        await listen("full", {"caller": {AMY, BEN}, "amy": {CALLER, BEN}, "ben": {CALLER, AMY}})
        party = await acd.bridges.monitor(
            connection, [sam_phone], label="supervisor:sam", mode="listen", caller_id="sam"
        )
        await listen(
            "listen",
            {
                "caller": {AMY, BEN},
                "amy": {CALLER, BEN},
                "ben": {CALLER, AMY},
                "sam": {CALLER, AMY, BEN},
            },
        )
        connection.set_monitor(party, "whisper")  # to the owner, amy: same call, no re-dial
        await listen(
            "whisper",
            {
                "caller": {AMY, BEN},
                "amy": {CALLER, BEN, SAM},
                "ben": {CALLER, AMY},
                "sam": {CALLER, AMY, BEN},
            },
        )
        connection.set_monitor(party, "barge")
        await listen(
            "barge",
            {
                "caller": {AMY, BEN, SAM},
                "amy": {CALLER, BEN, SAM},
                "ben": {CALLER, AMY, SAM},
                "sam": {CALLER, AMY, BEN},
            },
        )
        assert sam_phone.current is not None and party in connection.parties
        connection.remove_party(party)
        assert sam_phone.current is None, "the supervisor's page call did not end"

        ben_party = next(p for p in connection.parties if p.label == "agent:ben")
        seen = len(amy.events)
        await amy.ok("PUT", f"/api/calls/{call_id}/parties/{ben_party.id}/mute", {"on": True})
        await amy.next_event(
            "call.parties",
            after=seen,
            where=lambda e: [p["mode"] for p in e["parties"]] == ["muted"],
        )
        await listen("muted", {"caller": {AMY}, "amy": {CALLER}, "ben": {CALLER, AMY}})
        await amy.ok("PUT", f"/api/calls/{call_id}/parties/{ben_party.id}/mute", {"on": False})

        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": True})
        await listen("hold", {"caller": set(), "amy": {BEN}, "ben": {AMY}})
        hold_music = caller.rtp.audio()[-6000:]
        assert rms_dbfs(hold_music) > -40, "the held caller hears no music"
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": False})

        await sam.stop()
        await amy.stop_sending()
        await ben.stop_sending()
        seen = len(ben.events)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        # amy left: the conference goes on with ben, who owns it now.
        await ben.next_event(
            "call.parties", after=seen, where=lambda e: e["owner"] and e["parties"] == []
        )
        await until(lambda: acd.agent_status("amy").state == "wrap-up")
        caller.rtp.send_tone(engine_port, CALLER, 1.2)
        ben.send_pcm(tone(BEN, 1.2))
        mark = len(ben.audio()), len(caller.rtp.audio())
        await asyncio.sleep(1.4)
        assert amplitude(ben.audio()[mark[0] :], CALLER) > HEARD, "ben lost the caller"
        assert amplitude(caller.rtp.audio()[mark[1] :], BEN) > HEARD, "the caller lost ben"
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        caller.close()

        row = await recording_of(database, call_id)
        assert row.state == "complete", (row.state, row.failure)
        left, right = channels(desk.recordings.recordings_dir / row.path)
        # The recording's channels: left is the caller alone; right is everyone else heard in
        # the room, whispers included; a muted party, a listener and a held caller are not in
        # it.
        recorded = {
            "full": ({CALLER}, {AMY, BEN}),
            "listen": ({CALLER}, {AMY, BEN}),
            "whisper": ({CALLER}, {AMY, BEN, SAM}),
            "barge": ({CALLER}, {AMY, BEN, SAM}),
            "muted": ({CALLER}, {AMY}),
            "hold": (set(), {AMY, BEN}),
        }
        for mode, first, last in windows:
            on_left, on_right = recorded[mode]
            check("the recording's left channel", mode, left[first * 160 : last * 160], on_left)
            check("the recording's right channel", mode, right[first * 160 : last * 160], on_right)
        kinds = [e["kind"] for e in (await desk.center.record(call_id))["timeline"]]
        for kind in ("party-ringing", "party-joined", "party-muted", "owner-changed"):
            assert kind in kinds, (kind, kinds)


@pytest.mark.asyncio
async def test_a_conference_of_twelve_everyone_hears_everyone(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """The caller, the owner and ten parties brought in one after the other: the caller hears
    every party's tone at once and every party hears the caller; then they leave one by one
    and the call goes on until the owner hangs up."""
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: acd.agent_status("amy").state == "on-call")
        connection = acd.bridges.connection(acd.waiters[call_id].call)
        assert isinstance(connection, Connection)
        # Ten page phones (anyone's: the engine does not know agents), each its own tone.
        tones = [700.0 + 230.0 * i for i in range(10)]
        legs: list[PageLeg] = []
        for i, frequency in enumerate(tones):
            phone = desk.phones.phone(f"guest{i}")
            leg = PageLeg()
            phone.attach(leg.sink)
            ringing = asyncio.create_task(
                acd.bridges.consult(
                    connection, [phone], label=f"guest:{i}", caller_id="amy", join=True
                )
            )
            await until(lambda phone=phone: phone.ringing is not None)  # type: ignore[misc]
            assert phone.answer()
            await ringing
            # Quiet enough that eleven voices at once never clip (clipping makes new tones).
            leg.start(phone.leg.receive, tone(frequency, 1.0, amplitude=2000.0))
            legs.append(leg)
        assert len([p for p in connection.parties if p.role == "party"]) == 10
        assert len(connection.room.legs) == 12
        caller.rtp.send_tone(engine_port, CALLER, 4.0)
        await asyncio.sleep(SETTLE)
        marks = [len(leg.audio()) for leg in legs]
        heard_at = len(caller.rtp.audio())
        await asyncio.sleep(WINDOW)
        at_caller = caller.rtp.audio()[heard_at:]
        levels = {f: round(amplitude(at_caller, f)) for f in tones}
        assert all(level > HEARD / 3 for level in levels.values()), levels
        for leg, mark, frequency in zip(legs, marks, tones, strict=True):
            pcm = leg.audio()[mark:]
            assert amplitude(pcm, CALLER) > HEARD, f"party {frequency} does not hear the caller"
            assert amplitude(pcm, frequency) < ABSENT, f"party {frequency} hears itself"
        for i, leg in enumerate(legs):
            await leg.stop()
            assert desk.phones.phone(f"guest{i}").hang_up()  # the party leaves
        await until(lambda: not connection.parties)
        assert not connection.ended, "the call ended when the parties left"
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        caller.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("alone", ["end", "queue"])
async def test_when_everyone_left_the_customer_the_call_ends_or_goes_back_to_the_queue(
    database: AsyncEngine, tmp_path: Path, alone: str
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        acd = desk.center.acd
        desk.desk.control.alone = alone  # type: ignore[assignment]
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        ben_answers = asyncio.create_task(answer_next(ben))
        target = {"target": {"kind": "agent", "value": "ben"}, "join": True}
        await amy.ok("POST", f"/api/calls/{call_id}/parties", target)
        await ben_answers
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")  # ben leaves the conference
        await ben.next_event("call.ended")
        await until(lambda: acd.agent_status("ben").state == "wrap-up")
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")  # the customer is alone now
        await until(lambda: acd.agent_status("amy").state == "wrap-up")
        if alone == "end":
            await hung_up(caller, 3.0)
            record = await desk.center.record(call_id)
            assert record["disposition"] == "answered"
            caller.close()
            return
        # Back in the queue: music, then the next agent free (ben, after wrap-up) takes it.
        heard = len(caller.rtp.audio())
        await asyncio.sleep(1.0)
        assert rms_dbfs(caller.rtp.audio()[heard:]) > -40, "the caller waits in silence"
        assert call_id in acd.waiters and not acd.waiters[call_id].gone
        seen = len(ben.events)
        await ben.ok("POST", f"/api/calls/{call_id}/wrap-up", {"disposition": "information"})
        again = await ben.next_event(
            "call.offered", after=seen, where=lambda e: e["call"]["call_id"] == call_id
        )
        assert again["call"]["queue"] == "support"
        await ben.ok("POST", f"/api/calls/{call_id}/answer")
        await until(lambda: acd.agent_status("ben").state == "on-call")
        caller.rtp.send_tone(engine_port, CALLER, 1.2)
        mark = len(ben.audio())
        await asyncio.sleep(1.4)
        assert amplitude(ben.audio()[mark:], CALLER) > HEARD, "ben does not hear the caller"
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        caller.close()
        kinds = [e["kind"] for e in (await desk.center.record(call_id))["timeline"]]
        assert "alone" in kinds, kinds


@pytest.mark.asyncio
async def test_the_caller_hanging_up_ends_the_conference_for_every_party(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        acd = desk.center.acd
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, _ = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        ben_answers = asyncio.create_task(answer_next(ben))
        target = {"target": {"kind": "agent", "value": "ben"}, "join": True}
        await amy.ok("POST", f"/api/calls/{call_id}/parties", target)
        await ben_answers
        connection = acd.bridges.connection(acd.waiters[call_id].call)
        assert connection is not None
        caller.sip.send(caller.request("BYE", 2), desk.center.port)
        for agent in (amy, ben):
            ended = await agent.next_event("call.ended")
            assert ended["by"] == "caller", ended
        await until(lambda: acd.agent_status("amy").state == "wrap-up")
        await until(lambda: acd.agent_status("ben").state == "wrap-up")
        assert connection.ended and not connection.parties
        assert desk.phones.phone("ben").current is None, "ben's page call goes on"
        record = await desk.center.record(call_id)
        left = [e for e in record["timeline"] if e["kind"] == "party-left"]
        assert [(e["party"], e["by"]) for e in left] == [("agent:ben", "caller")]
        caller.close()


@pytest.mark.asyncio
async def test_an_outside_number_left_with_the_customer_keeps_the_call_and_one_record(
    database: AsyncEngine, tmp_path: Path
) -> None:
    """amy brings in an outside number and leaves: the number and the customer go on talking
    (recorded to the end), and the call's record is closed once, as transferred."""
    outside = await ScriptedPhone.open("outside", 0)  # the carrier's side of the trunk
    try:
        async with (
            open_desk(database, tmp_path, outbound_port=outside.sip.port) as desk,
            page(desk, "amy") as amy,
        ):
            acd = desk.center.acd
            outside.server_port = desk.center.port  # where its answers go
            await amy.ok("PUT", "/api/agent/state", {"state": "available"})
            caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
            call_id = await answer_next(amy)
            target = {"target": {"kind": "number", "value": "+15550123"}, "join": True}
            adding = asyncio.create_task(amy.ok("POST", f"/api/calls/{call_id}/parties", target))
            invite = await outside.next_request("INVITE")
            assert "15550123" in str(invite.uri)
            outside.answer(invite)
            added = await adding
            assert added["party"]["label"] == "number:+15550123"
            recording = acd.waiters[call_id].recording
            assert recording is not None
            await amy.ok("POST", f"/api/calls/{call_id}/hangup")
            await until(lambda: acd.agent_status("amy").state == "wrap-up")
            assert call_id not in acd.waiters  # the ACD is done with it; the call goes on
            caller.rtp.send_tone(engine_port, CALLER, 1.2)
            outside.rtp.send_tone(outside.remote_rtp_port, BEN, 1.2)
            marks = len(outside.rtp.audio()), len(caller.rtp.audio())
            await asyncio.sleep(1.4)
            assert amplitude(outside.rtp.audio()[marks[0] :], CALLER) > HEARD
            assert amplitude(caller.rtp.audio()[marks[1] :], BEN) > HEARD
            frames = recording.frames
            caller.sip.send(caller.request("BYE", 2), desk.center.port)
            bye = await outside.next_request("BYE")
            outside.reply(bye, 200)
            record = await desk.center.record(call_id)
            assert record["disposition"] == "transferred", record["disposition"]
            ends = [e for e in record["timeline"] if e["kind"] in ("ended", "abandoned")]
            assert len(ends) <= 1, ends
            row = await recording_of(database, call_id)
            assert row.duration_seconds is not None and row.duration_seconds >= frames * 0.02
            caller.close()
    finally:
        outside.close()
