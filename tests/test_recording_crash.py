"""kill -9 of `callcenter serve` mid-call: after the restart the call's recording plays, is
marked incomplete, and at most a second of its audio was lost (issue 6).

The service runs as a real subprocess on a migrated data directory; a trunk caller (700 Hz)
reaches amy through a flow that goes straight into a queue, her registered phone (which
logged her in) answers and sends 1300 Hz. The kill is aimed at the worst moment: the file is
watched from outside, and the process is killed just before the writer's next once-a-second
flush is due, so nearly a whole second of audio is in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.media import decode_wav, detect_tone, dominant_frequency
from callcenter.sip.sdp import parse_sdp
from tests.engine.phone import ScriptedPhone, final
from tests.engine.rtp_peer import free_even_base
from tests.engine.test_bridge import Caller
from tests.test_cli import Server

PASSWORD = "amy-phone-secret"
NUMBER = "5100"
CALLER = "+441632960002"

QUEUES = """\
queues:
  support:
    strategy: longest-idle
    ring_timeout: 2
    wrap_up: 0
    announce_every: null
agents:
  amy: {queues: [support]}
"""

FLOW = """\
start: q
nodes:
  q:
    type: queue
    queue: support
"""

# The recording service hands what it holds to the file once a second.
FLUSH_INTERVAL = 1.0
# The kill comes this long after a flush was seen on disk: just before the next one is due,
# so nearly a second is lost, but not so close that the watcher's own lateness (it polls the
# file from a thread, a few ms, more on a loaded machine) often lets the next flush win.
KILL_AFTER_FLUSH = 0.95
# What the bound allows beyond the flush interval, and why (measured unloaded in brackets):
# - one 20 ms media tick: the recorder is fed by the room's ticks, so the file's time starts
#   at the first tick after the recording began, up to 20 ms after it;
# - the answer is taken when amy's phone sends its 200, before the engine has read it,
#   bridged the call and begun the recording (1-4 ms; 5-10 ms with both cores busy);
# - the writer sleeps a relative second after each flush and writes in a worker thread, so
#   its period is a little over a second (1.0004-1.0011 s);
# - the watcher sees the flush late by its poll (2 ms) and the thread's scheduling.
# Killed 0.999 s after a flush, the loss measured 1.004-1.015 s: the design's bound is
# "a second and a tick"; 60 ms leaves room for a loaded machine.
TOLERANCE = 0.060


class CrashServer(Server):
    """`python -m callcenter serve` as in tests/test_cli.py, with extra CALLCENTER_* settings."""

    def __init__(self, data_dir: Path, cwd: Path, settings: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env |= {
            "CALLCENTER_DATA_DIR": str(data_dir),
            "CALLCENTER_LOG_LEVEL": "INFO",
            "CALLCENTER_HTTP_PORT": "0",
            **settings,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callcenter", "serve", "--sip-port", "0"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    async def ready(self) -> tuple[str, int]:
        """The "ready:" line (read in a thread: the test's peers share this loop) and the
        SIP port the OS chose."""
        line = await asyncio.to_thread(self.wait_for, "ready:")
        match = re.search(r"SIP: udp\+tcp 127\.0\.0\.1:(\d+)", line)
        assert match is not None, line
        return line, int(match.group(1))


@pytest.fixture
def center(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A migrated data directory with amy (an agent with a SIP password) and the settings
    of a service whose trunk number 5100 goes straight into the queue amy serves."""
    data_dir = tmp_path / "data"
    for name in ("DATABASE_URL", "RECORDINGS_DIR", "LOG_LEVEL", "SIP_REALM"):
        monkeypatch.delenv(f"CALLCENTER_{name}", raising=False)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(data_dir))
    assert main(["migrate"]) == 0
    assert main(["user", "add", "amy", "--role", "agent", "--sip-password", PASSWORD]) == 0

    ivr_dir = tmp_path / "ivr"
    (ivr_dir / "flows").mkdir(parents=True)
    (ivr_dir / "prompts").mkdir()
    (ivr_dir / "flows" / "support.yaml").write_text(FLOW)
    (ivr_dir / "queues.yaml").write_text(QUEUES)
    rtp_base = free_even_base(16)
    trunk = {"name": "loopback", "peers": ["127.0.0.1/32"], "numbers": {NUMBER: "flow:support"}}
    yield (
        data_dir,
        {
            "CALLCENTER_IVR_DIR": str(ivr_dir),
            "CALLCENTER_RECORDINGS_DIR": str(tmp_path / "recordings"),
            "CALLCENTER_TRUNKS": json.dumps([trunk]),
            "CALLCENTER_ACD_LOGIN_ON_REGISTER": "true",
            "CALLCENTER_RTP_PORT_MIN": str(rtp_base),
            "CALLCENTER_RTP_PORT_MAX": str(rtp_base + 31),
        },
    )


@pytest.fixture
def servers() -> Iterator[list[CrashServer]]:
    started: list[CrashServer] = []
    yield started
    for server in started:
        server.kill()  # SIGKILL if still running, then reaped and its pipe closed


def recording_row(database: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM recordings").fetchall()
    assert len(rows) == 1, [dict(r) for r in rows]
    return dict(rows[0])


def kill_before_the_next_flush(server: CrashServer, wav: Path) -> tuple[float, int, float]:
    """Watch the file grow; SIGKILL the server `KILL_AFTER_FLUSH` after it did. Returns the
    wall time the flush was seen, the file's size then, and the wall time of the kill.
    Blocking: run in a thread, so the peers on the loop go on sending and the kill waits for
    nothing on the loop."""
    size = wav.stat().st_size
    deadline = time.monotonic() + FLUSH_INTERVAL + 0.5
    while (grown := wav.stat().st_size) == size:
        assert time.monotonic() < deadline, f"{wav} did not grow for {FLUSH_INTERVAL} s"
        time.sleep(0.002)
    flushed = time.time()
    time.sleep(max(0.0, flushed + KILL_AFTER_FLUSH - time.time()))
    server.process.send_signal(signal.SIGKILL)
    return flushed, grown, time.time()  # after the signal: the call cannot have been longer


@pytest.mark.asyncio
async def test_kill_9_mid_call_leaves_a_playable_incomplete_recording_short_of_at_most_1_s(
    center: tuple[Path, dict[str, str]], tmp_path: Path, servers: list[CrashServer]
) -> None:
    data_dir, settings = center
    recordings_dir = Path(settings["CALLCENTER_RECORDINGS_DIR"])
    server = CrashServer(data_dir, tmp_path, settings)
    servers.append(server)
    ready, port = await server.ready()
    assert "0 repaired after a crash" in ready, ready

    amy = await ScriptedPhone.open("amy", port)
    caller = await Caller.open(port, NUMBER, user=CALLER)
    try:
        await amy.register(PASSWORD)  # and so she is logged in, available
        caller.invite()
        _, ok = await final(caller.sip)  # the flow answers, then queues the call
        assert ok.status == 200, ok.data
        caller.to_tag = ok.response.to_tag or ""
        caller.ack()
        engine_port = parse_sdp(ok.response.body).media[0].port

        invite = await amy.next_request("INVITE", timeout=10)
        answered = time.time()
        amy.answer(invite)
        await amy.next_request("ACK")
        caller.rtp.send_tone(engine_port, 700.0, 30.0)
        amy.rtp.send_tone(amy.remote_rtp_port, 1300.0, 30.0)

        await asyncio.sleep(2.5)  # the call goes on; the kill comes 3.5-4.5 s after the answer
        wavs = list(recordings_dir.glob("calls/*/*/*/*.wav"))
        assert len(wavs) == 1, wavs
        wav = wavs[0]
        flushed, flushed_size, killed = await asyncio.to_thread(
            kill_before_the_next_flush, server, wav
        )
        caller.rtp.stop()
        amy.rtp.stop()
        returncode, output = await asyncio.to_thread(server.finish)
        assert returncode == -signal.SIGKILL, output
        assert recording_row(data_dir / "callcenter.db")["state"] == "recording"
    finally:
        amy.close()
        caller.close()

    restarted = CrashServer(data_dir, tmp_path, settings)
    servers.append(restarted)
    ready, _ = await restarted.ready()
    assert "1 repaired after a crash" in ready, ready
    assert "1 were being written when the service stopped; 1 repaired" in "".join(restarted.output)
    row = recording_row(data_dir / "callcenter.db")
    restarted.process.send_signal(signal.SIGTERM)
    returncode, output = await asyncio.to_thread(restarted.finish)
    assert returncode == 0, output
    assert "Traceback" not in output

    # The row: incomplete, with what survived measured on the file as it is.
    assert row["state"] == "incomplete", row
    assert row["failure"] == "" and row["ended_at"] is not None
    assert recordings_dir / str(row["path"]) == wav
    data = wav.read_bytes()
    assert row["size_bytes"] == len(data)
    assert len(data) >= flushed_size, "what reached the file before the kill is gone"
    assert row["sha256"] == hashlib.sha256(data).hexdigest()

    # It plays: our decoder and the standard library's agree on a stereo 8 kHz file.
    decoded = decode_wav(data)
    assert (decoded.channels, decoded.sample_rate) == (2, 8000)
    with wave.open(str(wav), "rb") as reader:
        assert (reader.getnchannels(), reader.getframerate(), reader.getsampwidth()) == (2, 8000, 2)
        assert reader.getnframes() == len(decoded.samples)
    duration = len(decoded.samples) / 8000
    assert row["duration_seconds"] == pytest.approx(duration, abs=0.001)

    # The caller on the left only, amy on the right only (past the jitter buffer's start).
    left, right = decoded.samples[:, 0].copy(), decoded.samples[:, 1].copy()
    middle = slice(int(0.3 * 8000), len(left) - int(0.1 * 8000))
    assert abs(dominant_frequency(left[middle]) - 700.0) < 20
    assert abs(dominant_frequency(right[middle]) - 1300.0) < 20
    assert not detect_tone(left[middle], 1300.0)
    assert not detect_tone(right[middle], 700.0)

    # At most a second lost: the call lasted from the answer to the kill; the file is short
    # of that by what was still in memory.
    started = dt.datetime.fromisoformat(str(row["started_at"])).replace(tzinfo=dt.UTC)
    lost = (killed - answered) - duration
    print(
        f"answer→kill {killed - answered:.3f} s, file {duration:.3f} s: lost {lost:.3f} s "
        f"(recording began {started.timestamp() - answered:+.3f} s after the answer; "
        f"killed {killed - flushed:.3f} s after a flush)"
    )
    assert 0 <= started.timestamp() - answered < 0.5, "the recording began late"
    assert -0.02 <= lost <= FLUSH_INTERVAL + TOLERANCE
