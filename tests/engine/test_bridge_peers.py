"""Independent phones called through the engine by user name, audio measured both ways.

pyVoIP (Python, answers about a second late, PCMU) and baresip (C, libre; auto-answer, a sine
source and the sndfile module recording what it hears) register with digest, then a caller
on the loopback trunk dials them by user name. The caller sends 700 Hz; the phone's audio must
be 700 Hz. The phone sends 1300 Hz (pyVoIP) or baresip's sine; the caller must hear it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.engine.sip_endpoint import SipEndpoint
from callcenter.media import ToneGenerator, decode_wav, dominant_frequency
from callcenter.sip.sdp import parse_sdp

from .phone import final
from .test_bridge import LOOPBACK, PASSWORD, Caller, make_pbx_endpoint

pytest_plugins = ["tests.engine.test_bridge"]


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def baresip_agent(tmp_path: Path, user: str, server_port: int) -> tuple[list[str], Path]:
    """baresip as `user`'s phone: auto-answer, PCMU, a 1300 Hz sine as its microphone, and
    what it hears recorded by the sndfile module into the returned folder."""
    baresip = shutil.which("baresip")
    assert baresip is not None, "baresip not found: run `make test` as root to install it"
    conf = tmp_path / "baresip"
    conf.mkdir()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (conf / "config").write_text(
        "poll_method\t\tepoll\n"
        "net_interface\t\t127.0.0.1\n"
        f"sip_listen\t\t127.0.0.1:{_free_port()}\n"
        "audio_player\t\taubridge,x\naudio_source\t\tausine,1300\naudio_alert\t\taubridge,x\n"
        "ausrc_srate\t\t48000\nausrc_channels\t\t2\n"
        f"snd_path\t\t{dumps}\n"
        "module_path\t\t/usr/lib/baresip/modules\n"
        "module\t\t\tg711.so\nmodule\t\t\taubridge.so\nmodule\t\t\tausine.so\n"
        "module\t\t\tsndfile.so\n"
        "module_tmp\t\tuuid.so\nmodule_tmp\t\taccount.so\n"
    )
    (conf / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{server_port};transport=udp>"
        f";auth_pass={PASSWORD};regint=60;answermode=auto;audio_codecs=PCMU\n"
    )
    return [baresip, "-f", str(conf)], dumps


@pytest_asyncio.fixture
async def engine_endpoint(database: AsyncEngine) -> AsyncIterator[SipEndpoint]:
    endpoint = make_pbx_endpoint(database, LOOPBACK)
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


async def _wait_registered(endpoint: SipEndpoint, user: str, timeout: float = 10.0) -> None:
    assert endpoint.registrations is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not endpoint.registrations.contacts_of_user(user):
        assert loop.time() < deadline, f"{user} did not register"
        await asyncio.sleep(0.05)


async def _call_and_talk(endpoint: SipEndpoint, user: str, seconds: float) -> Caller:
    """Dial `user` from the trunk, wait for the answer, send 700 Hz for `seconds`."""
    caller = await Caller.open(endpoint.port, user)
    caller.invite()
    try:
        _, ok = await final(caller.sip, timeout=10)
        assert ok.status == 200, ok.data[:80]
    except BaseException:
        caller.close()
        raise
    caller.to_tag = ok.response.to_tag or ""
    caller.ack()
    port = parse_sdp(ok.response.body).media[0].port
    await caller.rtp.send_tone(port, 700.0, seconds)
    return caller


def _u8(frame: np.ndarray[Any, np.dtype[np.int16]]) -> bytes:
    """pyVoIP's audio format: 8-bit unsigned linear."""
    return bytes(((frame.astype(np.int32) >> 8) + 128).astype(np.uint8))


@pytest.mark.asyncio
async def test_pyvoip_answers_a_call_and_audio_flows_both_ways(
    engine_endpoint: SipEndpoint,
) -> None:
    from pyVoIP.VoIP import CallState, VoIPPhone

    heard: list[bytes] = []
    done = threading.Event()
    tone = ToneGenerator((1300.0,), -10.0)
    outgoing = b"".join(_u8(tone.next_frame()) for _ in range(200))  # 4 s

    def answer(call: Any) -> None:  # runs on a pyVoIP thread
        call.answer()
        call.write_audio(outgoing)
        while call.state == CallState.ANSWERED and not done.is_set():
            heard.append(call.read_audio(160, True))

    rtp = _free_port()
    phone = VoIPPhone(
        "127.0.0.1",
        engine_endpoint.port,
        "bob",
        PASSWORD,
        myIP="127.0.0.1",
        callCallback=answer,
        sipPort=_free_port(),
        rtpPortLow=rtp,
        rtpPortHigh=rtp + 10,
    )
    await asyncio.to_thread(phone.start)
    caller = None
    try:
        await _wait_registered(engine_endpoint, "bob")
        caller = await _call_and_talk(engine_endpoint, "bob", 2.5)
        done.set()
        at_phone = np.frombuffer(b"".join(heard), np.uint8).astype(np.int16) - 128
        assert len(at_phone) > 8000, "pyVoIP heard less than a second"
        assert abs(dominant_frequency(at_phone[-8000:] * 256) - 700.0) < 25
        at_caller = caller.rtp.audio()
        assert len(at_caller) > 8000
        assert abs(dominant_frequency(at_caller[-8000:]) - 1300.0) < 25
    finally:
        done.set()
        if caller is not None:
            caller.sip.send(caller.request("BYE", 2), engine_endpoint.port)
            await asyncio.sleep(0.2)
            caller.close()
        await asyncio.to_thread(phone.stop)


@pytest.mark.asyncio
async def test_baresip_is_called_by_user_name_and_audio_flows_both_ways(
    engine_endpoint: SipEndpoint, tmp_path: Path
) -> None:
    command, dumps = baresip_agent(tmp_path, "alice", engine_endpoint.port)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    caller = None
    try:
        await _wait_registered(engine_endpoint, "alice")
        caller = await _call_and_talk(engine_endpoint, "alice", 2.5)
        at_caller = caller.rtp.audio()
        assert len(at_caller) > 8000
        assert abs(dominant_frequency(at_caller[-8000:]) - 1300.0) < 25
        caller.sip.send(caller.request("BYE", 2), engine_endpoint.port)
        await asyncio.sleep(0.5)
        decoded = sorted(dumps.glob("*dec*.wav"))
        assert decoded, f"baresip wrote no recording: {list(dumps.iterdir())}"
        wav = decode_wav(decoded[-1].read_bytes())
        samples = wav.samples if wav.samples.ndim == 1 else wav.samples[:, 0]
        assert len(samples) > wav.sample_rate
        assert abs(dominant_frequency(samples[-wav.sample_rate :], wav.sample_rate) - 700.0) < 25
    finally:
        if caller is not None:
            caller.close()
        process.terminate()
        output, _ = await asyncio.to_thread(process.communicate, None, 10)
        print(output.decode(errors="replace"))
        assert process.returncode is not None, output
