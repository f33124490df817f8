"""SIPp, an independent SIP implementation, against the endpoint over UDP and TCP: OPTIONS;
calls to `echo` whose audio and RFC 4733 digits SIPp plays from pcap files; hold and resume
by re-INVITE with the engine's SDP answers checked in the scenario."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.media import detect_tone, dominant_frequency

from .pcap import (
    RAW_SOCKETS_NEEDED,
    LoopbackCapture,
    pcmu_audio,
    raw_sockets_allowed,
    read_pcap,
    rtp_tone,
    write_pcap,
)
from .rtp_peer import free_even_base, voiced
from .test_calls import make_endpoint

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
SIPP_PCAPS = Path("/usr/share/sip-tester")  # Debian's sip-tester: SIPp's own RFC 4733 captures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    server = SipEndpoint(EndpointConfig(host="127.0.0.1", port=0))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def media_endpoint() -> AsyncIterator[SipEndpoint]:
    """An endpoint that takes calls (RTP pool, media clock; 127.0.0.1 is a trusted trunk)."""
    server = make_endpoint()
    await server.start()
    yield server
    await server.stop()


async def run_sipp(*args: str, timeout: float = 60, cwd: Path | None = None) -> tuple[int, str]:
    # `make test` installs Debian's sip-tester; without it this is a broken setup, not a skip.
    assert SIPP is not None, "sipp not found: run `make test` as root to install sip-tester"
    process = await asyncio.create_subprocess_exec(
        SIPP,
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"sipp {' '.join(args)} still running after {timeout} s") from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def sipp_call(
    endpoint: SipEndpoint, scenario: str, workdir: Path, media_port: int, *args: str
) -> tuple[int, str]:
    """One call of `scenario` to `echo`, SIPp's media on `media_port` (and +2, which it binds
    for video). The scenario is copied into `workdir`, where SIPp looks for its pcap files.
    Returns SIPp's exit code and its output followed by its error log."""
    shutil.copy(SCENARIOS / scenario, workdir)
    errors = workdir / "sipp-errors.log"
    code, output = await run_sipp(
        f"127.0.0.1:{endpoint.port}",
        "-sf",
        str(workdir / scenario),
        "-s",
        "echo",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(media_port),
        "-m",
        "1",
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(errors),
        *args,
        timeout=30,
        cwd=workdir,
    )
    if errors.exists():
        output += "\n--- SIPp errors ---\n" + errors.read_text(errors="replace")
    return code, output[-4000:]


def require_raw_sockets() -> None:
    # Not a skip: CI runs as root, and a skipped media test would hide a broken setup.
    if not raw_sockets_allowed():
        pytest.fail(RAW_SOCKETS_NEEDED)


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_options(endpoint: SipEndpoint, transport: str, tmp_path: Path) -> None:
    code, output = await run_sipp(
        f"127.0.0.1:{endpoint.port}",
        "-sf",
        str(SCENARIOS / "options.xml"),
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        "50",
        "-r",
        "100",
        "-l",
        "10",
        "-timeout",
        "30s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(tmp_path / "stats.csv"),
    )
    # SIPp exits 0 only when every call succeeded (here: every OPTIONS got its 200).
    assert code == 0, output[-2000:]


@pytest.mark.asyncio
async def test_sipp_pcap_tone_comes_back_from_echo(
    media_endpoint: SipEndpoint, tmp_path: Path
) -> None:
    """SIPp calls `echo` and plays 2 s of a 700 Hz PCMU tone from a pcap this test writes;
    the echo comes back as the same tone.

    What came back is observed independently of both programs: an AF_PACKET socket on `lo`
    (root) records every datagram to and from SIPp's media port as the kernel carried it, and
    the test decodes that µ-law itself. SIPp cannot report it (it only counts what it sends),
    and the engine's own counters would be the thing under test. The capture also proves the
    pcap went out whole (100 packets of 700 Hz, from the port the offer named)."""
    require_raw_sockets()
    write_pcap(tmp_path / "tone.pcap", rtp_tone(700.0, 2.0))
    media_port = free_even_base(2)
    async with LoopbackCapture(media_port) as capture:
        code, output = await sipp_call(media_endpoint, "echo_pcap.xml", tmp_path, media_port)
    assert code == 0, output
    peers = capture.peers()
    assert len(peers) == 1, f"RTP with {peers}: expected the engine's leg alone"
    (engine_port,) = peers
    played = capture.between(media_port, engine_port)
    # SIPp sends each RTP packet of the pcap as written (only the UDP ports are its own).
    assert [d.payload for d in played] == [rtp for _, rtp in read_pcap(tmp_path / "tone.pcap")]
    assert abs(dominant_frequency(pcmu_audio(played)) - 700.0) < 2
    echoed = capture.between(engine_port, media_port)
    heard = voiced(pcmu_audio(echoed))
    # At least 1.5 of the 2 s: a loaded CI machine may drop the odd late frame.
    assert len(heard) >= 8000 * 1.5, f"{len(heard) / 8000:.2f} s of tone came back"
    steady = heard[1600:-1600]  # past the jitter buffer's start and the end of the play
    assert abs(dominant_frequency(steady) - 700.0) < 2
    assert detect_tone(steady, 700.0, min_fraction=0.9)
    assert media_endpoint.calls is not None and media_endpoint.calls.active == 0


_DTMF_LOG = re.compile(r"call (\S+): DTMF (\S)")


@pytest.mark.asyncio
async def test_sipp_rfc4733_digits_reach_the_engine_in_order(
    media_endpoint: SipEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIPp plays its own captures of the RFC 4733 events 1, 5 and # into a call to `echo`;
    the engine reports each digit once, in order, for that call (its log line is, for now,
    where digits go)."""
    require_raw_sockets()
    for name in ("1", "5", "pound"):
        source = SIPP_PCAPS / f"dtmf_2833_{name}.pcap"
        assert source.exists(), f"{source} missing: install Debian's sip-tester (`make test`)"
        shutil.copy(source, tmp_path)
    caplog.set_level(logging.INFO, logger="callcenter.engine.calls")
    call_id = f"dtmf-{secrets.token_hex(4)}"
    code, output = await sipp_call(
        media_endpoint,
        "dtmf_pcap.xml",
        tmp_path,
        free_even_base(2),
        "-cid_str",
        f"{call_id}-%u@%s",
    )
    assert code == 0, output
    logged = [
        match.groups()
        for record in caplog.records
        if record.name == "callcenter.engine.calls"
        and (match := _DTMF_LOG.fullmatch(record.getMessage()))
    ]
    assert logged == [(f"{call_id}-1@127.0.0.1", digit) for digit in ("1", "5", "#")], logged


@pytest.mark.asyncio
async def test_sipp_hold_and_resume_by_reinvite(
    media_endpoint: SipEndpoint, tmp_path: Path
) -> None:
    """INVITE, re-INVITE sendonly (answered recvonly), re-INVITE sendrecv (answered
    sendrecv), BYE: the scenario fails the call on any unexpected response or any answer
    whose direction, o= session id or o= version is wrong, so exit code 0 is all of that."""
    code, output = await sipp_call(media_endpoint, "hold_resume.xml", tmp_path, free_even_base(2))
    assert code == 0, output
    assert media_endpoint.calls is not None and media_endpoint.calls.active == 0
