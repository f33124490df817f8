"""`callcenter call` places a real call: into `echo`, its recording holds the tone it played,
and the digits it sent arrive in order; an unknown target fails with the status."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.engine.media import MediaClock, RtpPortPool
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.trunks import Trunks
from callcenter.media import ToneGenerator, decode_wav, dominant_frequency, encode_wav

from .test_bridge import PASSWORD, REALM, make_pbx_endpoint
from .test_calls import LOOPBACK, free_base

pytest_plugins = ["tests.engine.test_bridge"]


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    base = free_base()
    server = SipEndpoint(
        EndpointConfig(host="127.0.0.1", port=0),
        media=(RtpPortPool("127.0.0.1", base, base + 199), MediaClock()),
        trunks=LOOPBACK,
    )
    await server.start()
    yield server
    await server.stop()


async def run_cli(*args: str, env_dir: Path, **env: str) -> tuple[int, str]:
    base = free_base()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter",
        *args,
        env={
            "CALLCENTER_DATA_DIR": str(env_dir),
            "CALLCENTER_RTP_PORT_MIN": str(base),
            "CALLCENTER_RTP_PORT_MAX": str(base + 99),
            "PATH": "/usr/bin:/bin",
            **env,
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.asyncio
async def test_call_echo_records_the_played_tone_and_sends_digits(
    endpoint: SipEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tone = ToneGenerator((700.0,), level_dbfs=-10.0)
    played = np.concatenate([tone.next_frame() for _ in range(100)])  # 2 s of 700 Hz
    (tmp_path / "tone.wav").write_bytes(encode_wav(played, 8000, 1))
    record = tmp_path / "out.wav"
    with caplog.at_level(logging.INFO, logger="callcenter.engine.calls"):
        code, output = await run_cli(
            "call",
            f"sip:echo@127.0.0.1:{endpoint.port}",
            "--play",
            str(tmp_path / "tone.wav"),
            "--record",
            str(record),
            "--dtmf",
            "12#",
            env_dir=tmp_path,
        )
    assert code == 0, output
    assert "answered 200" in output
    decoded = decode_wav(record.read_bytes())
    audio = decoded.samples
    assert len(audio) >= 8000 * 1.5
    assert abs(dominant_frequency(audio[4000:12000]) - 700.0) < 20
    digits = [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "DTMF" in r.getMessage()]
    assert digits == ["1", "2", "#"]
    assert endpoint.calls is not None and endpoint.calls.active == 0


@pytest.mark.asyncio
async def test_call_to_nobody_fails_with_the_status(endpoint: SipEndpoint, tmp_path: Path) -> None:
    code, output = await run_cli(
        "call", f"sip:nobody@127.0.0.1:{endpoint.port}", "--duration", "2", env_dir=tmp_path
    )
    assert code == 1
    assert "call failed: 404" in output


@pytest.mark.asyncio
async def test_call_as_a_user_answers_the_digest_challenge(
    database: AsyncEngine, tmp_path: Path
) -> None:
    endpoint = make_pbx_endpoint(database, Trunks())  # no trunk: callers must authenticate
    await endpoint.start()
    try:
        target = f"sip:tone@127.0.0.1:{endpoint.port}"
        args = ("call", target, "--duration", "1", "--record", str(tmp_path / "t.wav"))
        code, output = await run_cli(*args, env_dir=tmp_path)
        assert code == 1 and "401" in output, output
        code, output = await run_cli(
            *args,
            "--user",
            "alice",
            env_dir=tmp_path,
            CALLCENTER_CALL_PASSWORD=PASSWORD,
            CALLCENTER_SIP_REALM=REALM,
        )
        assert code == 0, output
        heard = decode_wav((tmp_path / "t.wav").read_bytes()).samples
        assert abs(dominant_frequency(heard[-4000:]) - 1000.0) < 20
    finally:
        await endpoint.stop()
