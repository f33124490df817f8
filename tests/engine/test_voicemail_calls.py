"""Voicemail over loopback: a caller leaves a message, measured in the WAV file and the row.

A raw SIP UAC with its RTP peer dials a trunk number mapped to `voicemail:sales`: it hears the
greeting (rendered by the real espeak-ng) and the beep, sends a 700 Hz tone and presses '#'
(RFC 4733); the message is a WAV of that tone, as long as it was sent, with its row (box,
sha256, size), and the caller hears the goodbye and gets our BYE. A caller who hangs up
mid-message keeps it; one who hangs up at the beep leaves nothing; a bad box is 404; a full
disk loses the message but not the call's goodbye. A call already answered (the IVR's or a
queue's) gets its message through `record` with its own `on_end` kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.cli import migrate
from callcenter.db.models import VoicemailMessage
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.engine.media import MediaClock, RtpPortPool
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import PCM, decode_wav, detect_tone, dominant_frequency, rms_dbfs
from callcenter.services.ivr.prompts import PromptLibrary
from callcenter.services.voicemail import (
    Phase,
    VoicemailApplication,
    VoicemailService,
    VoicemailSession,
    WavFileWriter,
    is_box,
)
from callcenter.settings import Settings
from callcenter.sip import Request, make_response, parse_message
from callcenter.sip.dialog import DialogId

from .rtp_peer import RtpPeer, voiced
from .sip_client import UdpClient
from .test_calls import Uac, free_base

GREETING = "text:Please leave a message."
TONE_HZ = 700.0


@dataclass
class Voicemail:
    endpoint: SipEndpoint
    service: VoicemailService
    recordings: Path
    db: AsyncEngine


@pytest_asyncio.fixture
async def vm(tmp_path: Path) -> AsyncIterator[Voicemail]:
    settings = Settings(data_dir=tmp_path)
    # migrate() runs its own event loop (Alembic's async env): give it a thread.
    assert await asyncio.to_thread(migrate, settings) == 0
    db = create_engine(settings.database_url)
    trunks = Trunks(
        [
            Trunk.build(
                "loopback",
                ["127.0.0.1/32"],
                numbers={"6000": "voicemail:sales", "6001": "voicemail:..", "6002": "voicemail:"},
            )
        ]
    )
    base = free_base()
    endpoint = SipEndpoint(
        EndpointConfig(host="127.0.0.1", port=0),
        media=(RtpPortPool("127.0.0.1", base, base + 199), MediaClock()),
        trunks=trunks,
    )
    assert endpoint.calls is not None and endpoint.router is not None
    recordings = tmp_path / "recordings"
    service = VoicemailService(
        endpoint.calls,
        create_sessionmaker(db),
        recordings,
        PromptLibrary(Path("ivr/prompts"), tmp_path / "prompt-cache"),
        greeting=GREETING,
    )
    endpoint.router.applications["voicemail"] = VoicemailApplication(service)
    await endpoint.start()
    await service.start()
    try:
        yield Voicemail(endpoint, service, recordings, db)
    finally:
        await service.stop()
        await endpoint.stop()
        await db.dispose()


async def _uac(vm: Voicemail, target: str) -> Uac:
    return Uac(await UdpClient.open(), await RtpPeer.open(), vm.endpoint.port, target)


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _recording(vm: Voicemail) -> VoicemailSession:
    """The session once it records (the greeting and the beep are over)."""
    found: list[VoicemailSession] = []

    def recording() -> bool:
        found[:] = [s for s in vm.service.recordings if s.phase is Phase.RECORDING]
        return bool(found)

    await _until(recording, "the recording to start")
    return found[0]


async def _idle(vm: Voicemail) -> None:
    await _until(lambda: vm.service.active == 0, "the voicemail to finish")


async def _bye_from_us(uac: Uac, timeout: float = 10.0) -> Request:
    """Our BYE (skipping retransmitted 200s), answered 200 like a phone would."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        data = await asyncio.wait_for(uac.sip.collector.queue.get(), deadline - loop.time())
        message = parse_message(data)
        if isinstance(message, Request) and message.method == "BYE":
            assert message.call_id == uac.call_id
            uac.sip.send(bytes(make_response(message, 200)), uac.server_port)
            return message


def _beep_heard(audio: PCM) -> bool:
    """A 1 kHz frame among the last second received (the beep ends the greeting)."""
    tail = audio[-8000:]
    frames = tail[: len(tail) // 160 * 160].reshape(-1, 160)
    return any(detect_tone(frame, 1000.0) for frame in frames)


def _read_wav(path: Path) -> PCM:
    data = path.read_bytes()
    wav = decode_wav(data)
    assert (wav.sample_rate, wav.channels) == (8000, 1)
    assert len(wav.samples) * 2 + 44 == len(data)  # the header's sizes are the real ones
    return wav.samples


def _no_files(vm: Voicemail) -> bool:
    return not list((vm.recordings / "voicemail").rglob("*.wav"))


@pytest.mark.asyncio
async def test_message_until_hash_is_kept_with_its_row_and_we_hang_up(vm: Voicemail) -> None:
    uac = await _uac(vm, "6000")
    try:
        media_port = await uac.call()
        uac.ack()
        await _recording(vm)
        greeting = uac.rtp.audio()
        assert len(greeting) > 8000 * 0.8, "less than a greeting"
        assert rms_dbfs(voiced(greeting)) > -40, "the greeting is silent"
        assert _beep_heard(greeting), "no beep before the recording"
        await uac.rtp.send_tone(media_port, TONE_HZ, 2.0)
        await uac.rtp.send_digits(media_port, "#")
        heard_before_goodbye = len(uac.rtp.audio())
        await _bye_from_us(uac)
        goodbye = uac.rtp.audio()[heard_before_goodbye:]
        assert rms_dbfs(voiced(goodbye)) > -40, "no goodbye"
        await _idle(vm)
        [message] = await vm.service.messages("sales")
        assert (message.box, message.call_id, message.caller) == ("sales", uac.call_id, "uac")
        assert message.path.startswith("voicemail/sales/") and message.path.endswith(".wav")
        assert not message.heard
        path = vm.recordings / message.path
        data = path.read_bytes()
        assert message.sha256 == hashlib.sha256(data).hexdigest()
        assert message.size_bytes == len(data)
        samples = _read_wav(path)
        assert abs(message.duration_seconds - len(samples) / 8000) < 1e-9
        assert abs(message.duration_seconds - 2.0) <= 0.5, message.duration_seconds
        assert abs(dominant_frequency(voiced(samples)) - TONE_HZ) < 5.0
        assert abs(len(voiced(samples)) / 8000 - 2.0) <= 0.2  # the tone, all of it
        assert vm.service.failures == 0
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_caller_hanging_up_mid_message_keeps_it(vm: Voicemail) -> None:
    uac = await _uac(vm, "6000")
    try:
        media_port = await uac.call()
        uac.ack()
        await _recording(vm)
        await uac.rtp.send_tone(media_port, TONE_HZ, 1.5)
        await asyncio.sleep(0.1)  # the jitter buffer hands over the last frames
        bye = await uac.bye()
        assert bye is not None and bye.status == 200
        await _idle(vm)
        [message] = await vm.service.messages("sales")
        assert abs(message.duration_seconds - 1.5) <= 0.5, message.duration_seconds
        samples = _read_wav(vm.recordings / message.path)
        assert abs(dominant_frequency(voiced(samples)) - TONE_HZ) < 5.0
        await asyncio.sleep(0.2)
        assert not any(_is_bye(data) for data in _drain(uac)), "BYE for a call the caller ended"
    finally:
        uac.sip.close()
        uac.rtp.close()


def _drain(uac: Uac) -> list[bytes]:
    out = []
    while not uac.sip.collector.queue.empty():
        out.append(uac.sip.collector.queue.get_nowait())
    return out


def _is_bye(data: bytes) -> bool:
    message = parse_message(data)
    return isinstance(message, Request) and message.method == "BYE"


@pytest.mark.asyncio
async def test_hanging_up_at_the_beep_leaves_no_message(vm: Voicemail) -> None:
    uac = await _uac(vm, "6000")
    try:
        await uac.call()
        uac.ack()
        await _recording(vm)
        await asyncio.sleep(0.1)
        bye = await uac.bye()
        assert bye is not None and bye.status == 200
        await _idle(vm)
        assert await vm.service.messages("sales") == []
        assert _no_files(vm)
        assert vm.service.failures == 0
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.parametrize("target", ["6001", "6002"])
@pytest.mark.asyncio
async def test_bad_box_is_404(vm: Voicemail, target: str) -> None:
    uac = await _uac(vm, target)
    try:
        uac.sip.send(uac.invite(), vm.endpoint.port)
        reply = await uac.sip.receive(timeout=5)
        while reply is not None and reply.status < 200:
            reply = await uac.sip.receive(timeout=5)
        assert reply is not None and reply.status == 404
    finally:
        uac.sip.close()
        uac.rtp.close()


def test_box_names() -> None:
    assert all(is_box(name) for name in ("sales", "a", "x" * 64, "Support_2.uk-east", "..a"))
    bad = ("", ".", "..", "x" * 65, "a/b", "a b", "ä", "a\\b", "sales\n")
    assert not any(is_box(name) for name in bad)


@pytest.mark.parametrize("failing", ["create", "append"])
@pytest.mark.asyncio
async def test_full_disk_loses_the_message_not_the_goodbye(
    vm: Voicemail,
    failing: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "create":
        monkeypatch.setattr(WavFileWriter, "create", classmethod(no_space))
    else:
        monkeypatch.setattr(WavFileWriter, "append", no_space)
    uac = await _uac(vm, "6000")
    try:
        media_port = await uac.call()
        uac.ack()
        if failing == "append":
            await _recording(vm)
            # The first second of audio goes to the file, which fails: the goodbye follows.
            uac.rtp.send_tone(media_port, TONE_HZ, 3.0)
        heard_before = len(uac.rtp.audio())
        await _bye_from_us(uac)
        uac.rtp.stop()
        assert rms_dbfs(voiced(uac.rtp.audio()[heard_before:])) > -40, "no goodbye"
        await _idle(vm)
        assert vm.service.failures == 1
        assert await vm.service.messages("sales") == []
        assert _no_files(vm)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_record_on_an_answered_call_keeps_its_on_end(vm: Voicemail) -> None:
    """Path (a): a call already up (here the `echo` extension's) has its leg freed and its
    message taken; whoever held the call hears of its end, once."""
    calls = vm.endpoint.calls
    assert calls is not None
    uac = await _uac(vm, "echo")
    try:
        media_port = await uac.call()
        uac.ack()
        assert uac.ok is not None
        call = calls.get(DialogId.as_uas(uac.ok.response))
        assert call is not None
        ended: list[str] = []
        call.on_end = lambda: ended.append("ended")
        calls.release_media(call)
        task = asyncio.create_task(
            vm.service.record(call, "support", call_id="queue-call-1", caller="+442079460018")
        )
        await _recording(vm)
        await uac.rtp.send_tone(media_port, TONE_HZ, 1.0)
        await uac.rtp.send_digits(media_port, "#")
        await _bye_from_us(uac)
        record = await asyncio.wait_for(task, 10)
        assert record is not None
        assert ended == ["ended"]
        assert (record.box, record.call_id, record.caller) == (
            "support",
            "queue-call-1",
            "+442079460018",
        )
        assert abs(record.duration_seconds - 1.0) <= 0.5
        assert record.created_at.tzinfo is not None
        assert await vm.service.messages("support") == [record]
        assert await vm.service.mark_heard(record.id)
        assert not await vm.service.mark_heard(record.id + 1000)
        [heard] = await vm.service.messages("support")
        assert heard.heard
        with pytest.raises(ValueError):
            await vm.service.record(call, "../etc", call_id="x", caller="")
    finally:
        uac.sip.close()
        uac.rtp.close()


@pytest.mark.asyncio
async def test_messages_are_newest_first(vm: Voicemail) -> None:
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    async with create_sessionmaker(vm.db).begin() as db:
        for minutes in (0, 10, 5):
            db.add(
                VoicemailMessage(
                    box="sales",
                    call_id=f"c{minutes}",
                    caller="",
                    path=f"voicemail/sales/{minutes}.wav",
                    duration_seconds=1.0,
                    sha256="0" * 64,
                    size_bytes=44,
                    created_at=start + dt.timedelta(minutes=minutes),
                )
            )
    assert [m.call_id for m in await vm.service.messages("sales")] == ["c10", "c5", "c0"]
    assert await vm.service.messages("support") == []


@pytest.mark.asyncio
async def test_stopping_the_service_keeps_the_message_and_hangs_up(vm: Voicemail) -> None:
    uac = await _uac(vm, "6000")
    try:
        media_port = await uac.call()
        uac.ack()
        await _recording(vm)
        uac.rtp.send_tone(media_port, TONE_HZ, 3.0)
        # Written as it goes: after a second the file on disk is a whole WAV of that second.
        [partial] = await asyncio.to_thread(lambda: list(vm.recordings.rglob("*.wav")))
        await _until(lambda: partial.stat().st_size >= 44 + 2 * 8000, "the first flush", 3.0)
        assert len(_read_wav(partial)) >= 8000
        await asyncio.sleep(0.2)
        await vm.service.stop()
        assert vm.service.active == 0
        await _bye_from_us(uac)
        [message] = await vm.service.messages("sales")
        assert abs(message.duration_seconds - 1.2) <= 0.5
        _read_wav(vm.recordings / message.path)
    finally:
        uac.sip.close()
        uac.rtp.close()
