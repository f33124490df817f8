"""Every answered call is recorded: stereo, the caller left, everyone else right, one file
from the first answer to the end across hold and transfer (tones measured in the file)."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.models import Recording
from callcenter.db.session import create_sessionmaker
from callcenter.media import PCM, decode_wav, detect_tone, dominant_frequency
from callcenter.services.audiofiles import WavFileWriter
from callcenter.services.audit import AuditLog
from tests.engine.test_acd_calls import (
    PAY_LINE,
    REGULAR,
    SUPPORT,
    VIP,
    hung_up,
    place,
    staff_and_customers,  # noqa: F401 (autouse: amy, ben and two customers)
    until,
)

from .page_client import PageClient, tone
from .test_desk_calls import answer_next, open_desk, page

pytest_plugins = ["tests.engine.test_bridge"]


async def recording_of(database: AsyncEngine, call_id: str) -> Recording:
    sessions = create_sessionmaker(database)

    async def finished() -> Recording | None:
        async with sessions() as session:
            rows = (
                await session.scalars(select(Recording).where(Recording.call_id == call_id))
            ).all()
        assert len(rows) <= 1, "one recording per call"
        return rows[0] if rows and rows[0].state != "recording" else None

    for _ in range(100):
        row = await finished()
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"the recording of {call_id} was not closed")


def channels(path: Path) -> tuple[PCM, PCM]:
    wav = decode_wav(path.read_bytes())
    assert wav.channels == 2 and wav.sample_rate == 8000
    return wav.samples[:, 0].copy(), wav.samples[:, 1].copy()


def onset(samples: PCM, threshold: float = 1000.0) -> float:
    """Seconds to the first 10 ms whose level passes `threshold`."""
    for start in range(0, len(samples) - 80, 80):
        if np.abs(samples[start : start + 80].astype(np.int32)).mean() > threshold:
            return start / 8000
    raise AssertionError("no tone in the channel")


@pytest.mark.asyncio
async def test_a_call_is_recorded_caller_left_agent_right_aligned_with_the_call(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, VIP)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        await asyncio.sleep(0.5)
        sent_at = time.time()
        caller.rtp.send_tone(engine_port, 700.0, 1.5)
        await asyncio.sleep(1.0)
        # The room hears the caller after the RTP jitter buffer's play-out delay (adaptive,
        # in whole frames): that is when the tone happened, for the call and its recording.
        playout = desk.center.acd.waiters[call_id].call.leg.jitter.depth * 0.020
        await asyncio.sleep(1.0)
        amy.send_pcm(tone(1300.0, 1.5))
        await asyncio.sleep(2.0)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        row = await recording_of(database, call_id)
        assert row.state == "complete", (row.state, row.failure)
        path = desk.recordings.recordings_dir / row.path
        left, right = channels(path)
        assert row.duration_seconds == pytest.approx(len(left) / 8000, abs=0.001)
        assert row.size_bytes == path.stat().st_size and len(row.sha256 or "") == 64
        # The compressed copy (Opus) follows, with its own hash.
        for _ in range(100):
            async with create_sessionmaker(database)() as session:
                again = await session.get(Recording, row.id)
            if again is not None and again.compressed_path:
                break
            await asyncio.sleep(0.1)
        assert again is not None and again.compressed_path and again.compressed_sha256
        opus = desk.recordings.recordings_dir / again.compressed_path
        assert opus.suffix == ".opus" and opus.stat().st_size == again.compressed_size_bytes
        assert hashlib.sha256(opus.read_bytes()).hexdigest() == again.compressed_sha256
        assert opus.stat().st_size * 5 < path.stat().st_size
        # The waveform for the QA player: loud where the caller's tone is, on the left.
        assert row.peaks is not None and len(row.peaks) == 2
        assert len(row.peaks[0]) == min(1000, len(left))
        at = int(1.2 / (len(left) / 8000) * len(row.peaks[0]))
        assert row.peaks[0][at] > 150 and row.peaks[1][at] < 20

        # The caller's tone on the left only, the agent's on the right only.
        caller_part = slice(int(0.6 * 8000), int(1.9 * 8000))
        assert abs(dominant_frequency(left[caller_part]) - 700.0) < 20
        assert not detect_tone(right[caller_part], 700.0)
        agent_part = slice(len(left) - int(2.3 * 8000), len(left) - int(1.0 * 8000))
        assert abs(dominant_frequency(right[agent_part]) - 1300.0) < 20
        assert not detect_tone(left[agent_part], 1300.0)

        # Aligned with the call within 40 ms: the tone starts in the file where the call's
        # clock says the room heard it: sent, plus the play-out delay, plus on average half
        # of the mixer's 20 ms tick (a frame waits for the next tick).
        expected = sent_at - row.started_at.timestamp() + playout + 0.010
        found = onset(left)
        print(f"caller tone at {found:.3f} s in the file, heard at {expected:.3f} s")
        assert abs(found - expected) < 0.04
        caller.close()


@pytest.mark.asyncio
async def test_hold_and_transfer_keep_one_continuous_recording(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with (
        open_desk(database, tmp_path) as desk,
        page(desk, "amy") as amy,
        page(desk, "ben") as ben,
    ):
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, REGULAR)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        began = time.time()
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": True})
        await asyncio.sleep(0.5)
        await amy.ok("PUT", f"/api/calls/{call_id}/hold", {"on": False})
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        await asyncio.sleep(1.2)
        await amy.ok(
            "POST", f"/api/calls/{call_id}/transfer", {"target": {"kind": "agent", "value": "ben"}}
        )
        await asyncio.sleep(1.0)  # the caller waits with music for ben
        await ben.ok("PUT", "/api/agent/state", {"state": "available"})
        await answer_next(ben)
        await until(lambda: desk.center.acd.agent_status("ben").state == "on-call")
        ben.send_pcm(tone(1300.0, 1.2))
        await asyncio.sleep(1.4)
        await ben.ok("POST", f"/api/calls/{call_id}/hangup")
        ended = time.time()
        await hung_up(caller, 3.0)

        row = await recording_of(database, call_id)
        assert row.state == "complete"
        left, right = channels(desk.recordings.recordings_dir / row.path)
        # One file for the whole call, its length the call's (the wait for ben included).
        assert abs(len(left) / 8000 - (ended - began)) < 0.5
        kinds = [event["kind"] for event in row.timeline]
        assert kinds[:2] == ["hold", "resume"] and "transferred" in kinds and "connected" in kinds
        assert abs(dominant_frequency(left[: int(3.0 * 8000)]) - 700.0) < 20
        assert abs(dominant_frequency(right[-int(1.6 * 8000) :]) - 1300.0) < 20
        caller.close()


@pytest.mark.asyncio
async def test_a_tone_during_a_pause_is_nowhere_in_the_file_and_a_pause_ends_by_itself(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        desk.center.acd.max_recording_pause = 2.0
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, VIP)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        caller.rtp.send_tone(engine_port, 700.0, 0.8)
        await asyncio.sleep(1.0)
        await amy.ok("PUT", f"/api/calls/{call_id}/recording", {"paused": True})
        assert (await amy.next_event("call.recording"))["paused"] is True
        # The card number, read out by the caller and repeated by the agent.
        caller.rtp.send_tone(engine_port, 1000.0, 1.0)
        amy.send_pcm(tone(1600.0, 1.0))
        await asyncio.sleep(1.2)
        # Forgotten: the pause ends by itself after the maximum (2 s here).
        resumed = await amy.next_event("call.recording", after=len(amy.events) - 1)
        assert resumed["paused"] is False
        caller.rtp.send_tone(engine_port, 700.0, 0.8)
        await asyncio.sleep(1.0)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)

        row = await recording_of(database, call_id)
        left, right = channels(desk.recordings.recordings_dir / row.path)
        for channel in (left, right):
            for start in range(0, len(channel) - 160, 160):
                frame = channel[start : start + 160]
                assert not detect_tone(frame, 1000.0), f"paused audio at {start / 8000:.2f} s"
                assert not detect_tone(frame, 1600.0), f"paused audio at {start / 8000:.2f} s"
        kinds = [(e["kind"], e.get("by")) for e in row.timeline]
        assert ("paused", "amy") in kinds and ("resumed", "system") in kinds
        # Before and after the pause the caller is there.
        assert abs(dominant_frequency(left[: int(0.8 * 8000)]) - 700.0) < 20
        assert abs(dominant_frequency(left[-int(1.6 * 8000) : -int(0.6 * 8000)]) - 700.0) < 20
        record = await desk.center.record(call_id)
        assert "recording-paused" in [e["kind"] for e in record["timeline"]]
        audit = await AuditLog(create_sessionmaker(database)).entries(subject=f"call:{call_id}")
        assert [(e.actor, e.action) for e in reversed(audit)] == [
            ("amy", "recording.pause"),
            ("system", "recording.resume"),
        ]
        caller.close()


@pytest.mark.asyncio
async def test_a_full_disk_never_drops_the_call_and_recording_resumes_when_space_returns(
    database: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = {"disk": False}
    append = WavFileWriter.append

    def append_unless_full(writer: WavFileWriter, pcm: bytes) -> None:
        if full["disk"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        append(writer, pcm)

    monkeypatch.setattr(WavFileWriter, "append", append_unless_full)
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, VIP)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        await asyncio.sleep(0.5)
        full["disk"] = True
        await until(lambda: desk.recordings.disk_failures > 0, what="the disk error seen")
        for _ in range(50):  # the row follows the counter (written after an await)
            async with create_sessionmaker(database)() as session:
                row = await session.scalar(select(Recording).where(Recording.call_id == call_id))
            if row is not None and row.state == "failed":
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.state == "failed" and "space" in row.failure
        # The call goes on: both ways.
        caller.rtp.send_tone(engine_port, 700.0, 1.2)
        amy.send_pcm(tone(1300.0, 1.2))
        await asyncio.sleep(1.4)
        assert abs(dominant_frequency(amy.audio()[-4000:]) - 700.0) < 20
        assert abs(dominant_frequency(caller.rtp.audio()[-4000:]) - 1300.0) < 20
        full["disk"] = False  # space is back: what waited in memory goes to the file
        await asyncio.sleep(0.6)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        row = await recording_of(database, call_id)
        assert row.state == "complete", (row.state, row.failure)
        kinds = [e["kind"] for e in row.timeline]
        assert "disk-failed" in kinds and "disk-recovered" in kinds
        left, right = channels(desk.recordings.recordings_dir / row.path)
        # The audio of the full-disk moments is in the file, both sides.
        assert detect_tone(left[int(0.9 * 8000) : int(2.0 * 8000)], 700.0)
        assert detect_tone(right[int(0.9 * 8000) : int(2.0 * 8000)], 1300.0)
        caller.close()


@pytest.mark.asyncio
async def test_qa_finds_a_recording_and_streams_it_with_range_requests(
    database: AsyncEngine, tmp_path: Path
) -> None:
    # quinn (qa, reviewing the support queue) comes with the desk.
    async with open_desk(database, tmp_path) as desk, page(desk, "amy") as amy:
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, SUPPORT, VIP)
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        caller.rtp.send_tone(engine_port, 700.0, 1.0)
        await asyncio.sleep(1.2)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)
        row = await recording_of(database, call_id)
        await amy.ok(
            "POST", f"/api/calls/{call_id}/wrap-up", {"disposition": "sale", "notes": "upsold"}
        )
        # Agents do not browse recordings.
        assert (await amy.call("GET", "/api/recordings")).status_code == 403

        quinn = PageClient(desk.base_url)
        await quinn.login("quinn", "quinn-web-password")
        found = await quinn.ok("GET", "/api/recordings", None)
        assert [r["id"] for r in found] == [row.id]
        by = await quinn.ok("GET", f"/api/recordings?agent=amy&number=%2B{VIP[1:]}&outcome=sale")
        assert [r["call_id"] for r in by] == [call_id]
        assert by[0]["queue"] == "support" and by[0]["customer_id"] is not None
        assert await quinn.ok("GET", "/api/recordings?agent=ben") == []
        later = (row.started_at + dt.timedelta(hours=1)).isoformat()
        assert await quinn.ok("GET", f"/api/recordings?since={later.replace('+', '%2B')}") == []
        naive = await quinn.call("GET", "/api/recordings?since=2026-01-01T00:00:00")
        assert naive.status_code == 422

        info = await quinn.ok("GET", f"/api/recordings/{row.id}")
        assert info["sha256"] == row.sha256 and len(info["peaks"]) == 2
        assert info["call_timeline"][0]["kind"] == "arrived"

        path = desk.recordings.recordings_dir / row.path
        whole = path.read_bytes()
        full = await quinn.http.get(f"/api/recordings/{row.id}/audio")
        assert full.status_code == 200 and full.content == whole
        assert full.headers["content-type"] == "audio/wav"
        part = await quinn.http.get(
            f"/api/recordings/{row.id}/audio", headers={"Range": "bytes=44-1043"}
        )
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 44-1043/{len(whole)}"
        assert part.content == whole[44:1044]
        tail = await quinn.http.get(
            f"/api/recordings/{row.id}/audio", headers={"Range": "bytes=-100"}
        )
        assert tail.status_code == 206 and tail.content == whole[-100:]
        beyond = await quinn.http.get(
            f"/api/recordings/{row.id}/audio", headers={"Range": f"bytes={len(whole) + 10}-"}
        )
        assert beyond.status_code == 416
        missing = await quinn.http.get("/api/recordings/99999/audio")
        assert missing.status_code == 404
        saved = await quinn.http.get(f"/api/recordings/{row.id}/audio?download=true")
        assert saved.status_code == 200
        assert "attachment" in saved.headers["content-disposition"]

        # Every listen and download is on the hash-chained audit log (seeks are not).
        audit = AuditLog(create_sessionmaker(database))
        entries = await audit.entries(subject=f"recording:{row.id}")
        assert [(e.actor, e.action) for e in reversed(entries)] == [
            ("quinn", "recording.listen"),
            ("quinn", "recording.download"),
        ]
        assert (await audit.verify()).ok
        await quinn.close()
        caller.close()


def windows_with_tone(samples: PCM, frequency: float, seconds: float = 0.25) -> list[float]:
    """Where (seconds) each window holding `frequency` starts."""
    size = int(seconds * 8000)
    return [
        start / 8000
        for start in range(0, len(samples) - size, size)
        if detect_tone(samples[start : start + size], frequency)
    ]


@pytest.mark.asyncio
async def test_the_ivr_part_is_recorded_and_its_payment_step_is_silence(
    database: AsyncEngine, tmp_path: Path
) -> None:
    async with open_desk(database, tmp_path, record_ivr=True) as desk, page(desk, "amy") as amy:
        await amy.ok("PUT", "/api/agent/state", {"state": "available"})
        caller, engine_port = await place(desk.center, PAY_LINE, VIP)
        caller.rtp.send_tone(engine_port, 700.0, 0.4)  # while "Payments." plays
        [session] = desk.center.ivr.sessions
        await until(lambda: session.recording is not None and session.recording.paused, 5.0)
        # The caller reads the card number out while keying it: neither is recorded.
        caller.rtp.send_tone(engine_port, 1000.0, 0.8)
        await asyncio.sleep(1.0)
        await caller.rtp.send_digits(engine_port, "4111#")
        call_id = await answer_next(amy)
        await until(lambda: desk.center.acd.agent_status("amy").state == "on-call")
        caller.rtp.send_tone(engine_port, 700.0, 0.8)
        await asyncio.sleep(1.0)
        await amy.ok("POST", f"/api/calls/{call_id}/hangup")
        await hung_up(caller, 3.0)

        row = await recording_of(database, call_id)
        assert row.state == "complete", (row.state, row.failure)
        kinds = [(event["kind"], event.get("by")) for event in row.timeline]
        assert kinds[0] == ("ivr", None)
        assert ("paused", "ivr") in kinds and ("resumed", "ivr") in kinds
        assert kinds.index(("resumed", "ivr")) < kinds.index(("connected", None))
        left, right = channels(desk.recordings.recordings_dir / row.path)
        at = {event["kind"]: float(str(event["at_seconds"])) for event in row.timeline}
        # From the IVR's answer: the greeting on the right, the caller's tone on the left.
        assert windows_with_tone(left, 700.0)[0] < 0.5
        assert rms(right[: int(at["paused"] * 8000)]) > 300
        # The payment step: zeros only, on both channels; the tone and the digits nowhere.
        paused = slice(int(at["paused"] * 8000) + 1, int(at["resumed"] * 8000))
        assert at["resumed"] - at["paused"] > 1.5
        assert not left[paused].any() and not right[paused].any()
        assert windows_with_tone(left, 1000.0) == [] and windows_with_tone(right, 1000.0) == []
        # The agent's part follows in the same file.
        assert windows_with_tone(left, 700.0)[-1] > at["connected"]
        entries = await AuditLog(create_sessionmaker(database)).entries(subject=f"call:{call_id}")
        assert {(e.actor, e.action) for e in entries} >= {
            ("ivr", "recording.pause"),
            ("ivr", "recording.resume"),
        }
        caller.close()


def rms(samples: PCM) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
