"""SIPp, an independent SIP implementation, against the endpoint over UDP and TCP."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")


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


async def run_sipp(*args: str, timeout: float = 60) -> tuple[int, str]:
    # `make test` installs Debian's sip-tester; without it this is a broken setup, not a skip.
    assert SIPP is not None, "sipp not found: run `make test` as root to install sip-tester"
    process = await asyncio.create_subprocess_exec(
        SIPP,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


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
