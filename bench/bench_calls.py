"""Call-load benchmark (issue 3): N concurrent calls into a real `callcenter serve`'s echo.

    .venv/bin/python -m bench.bench_calls [--calls 50,100,200] [--seconds 20]
        [--setup-calls 200] [--setup-concurrency 20] [--engine-profile FILE]

The engine runs as a subprocess pinned to CPU 0 (`taskset -c 0`); this driver pins itself to
CPU 1 and is the load: an asyncio SIP UAC over UDP (INVITE with an SDP offer, 200, ACK, BYE,
200; retransmissions on T1 doubling) and, per call, an RTP socket that streams PCMU at 20 ms
from one shared timer on an absolute schedule (one packet per call per tick, not N timers).

Each packet's payload carries the call's index and the packet's number, written in bytes that
survive the echo's G.711 decode and re-encode (µ-law round-trips every byte but 0x7F, so the
digits are 0x80 | 7 bits); the sink matches what comes back to the send time of that number.

Latency. The echo answers each frame at a media-clock tick, after its jitter buffer: a
frame that arrives waits for the next tick (`(tick - send) mod 20 ms`) and then the buffer's
depth (`depth` frames, 1 by default, more when its adaptive target grows). That is the
echo's *inherent* delay, present in any implementation with that buffer. So we report
- round_trip_*: the raw send -> echo received time (inherent delay included);
- added_latency_*: round trip minus the inherent delay as configured: the wait for the next
  tick plus `depth` x 20 ms. The tick times come from a probe call before the load (the
  earliest echo seen of each tick on an idle engine, so ~0.1 ms of loopback is in the
  reference), and the generator sends half a tick away from them, so no packet straddles a
  tick. What remains is what the engine adds under load: ticks firing late, this leg's place
  in the tick's loop over all legs, datagrams queued behind a busy loop, and any frame the
  adaptive jitter buffer adds (20 ms steps).
Loss counts the packets sent after a 0.5 s warm-up, within the measuring window, that never
came back (lost on the way in, dropped late by the jitter buffer, or lost on the way out).

Engine CPU is utime + stime from /proc/<pid>/stat over the window (% of one core); RSS is
VmRSS at its end. `call_setup` runs INVITE -> 200 -> ACK -> BYE -> 200 as fast as it can with
bounded concurrency. Results go to bench/results.json and a Markdown table to stdout.
N escalation stops at the first N whose failed calls exceed 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from callcenter.engine.media import RtpLeg

HOST = "127.0.0.1"
FRAME = 0.020
"""The media clock's tick and our packet interval (PCMU, 160 samples)."""
PAYLOAD_BYTES = 160
RTP_HEADER = 12
WARMUP = 0.5
"""Seconds of each stream ignored before the measuring window (latching, buffer settling)."""
DRAIN = 0.4
"""After the last packet, time for echoes still in the jitter buffer (8 frames max) to return."""
T1 = 0.5
T2 = 4.0
INVITE_TIMEOUT = 10.0
BYE_TIMEOUT = 10.0
SIGNALLING_CONCURRENCY = 50
"""INVITEs (and BYEs) in flight while N calls are being set up or torn down."""
MAX_FAILED_FRACTION = 0.05
ENGINE_START_TIMEOUT = 30.0
ENGINE_STOP_TIMEOUT = 15.0
MAGIC = b"\x55\xaa\x33"
"""Payload bytes 0-2 of our packets (none is 0x7F, so they survive µ-law decode/encode)."""
RESULTS = Path(__file__).resolve().parent / "results.json"

T = TypeVar("T")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def jitter_depth_frames() -> int:
    """The engine's configured jitter-buffer depth (frames) of an RTP leg, read from the code
    so the inherent delay we subtract follows it."""
    return RtpLeg(0, family=socket.AF_INET).jitter.depth


# --- the engine process ------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ": state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@dataclass
class Engine:
    """`callcenter serve` in a subprocess: migrate, start, wait for `ready:`, stop (SIGINT)."""

    data_dir: Path
    rtp_range: tuple[int, int]
    cpu: int | None
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    sip_port: int = 0
    loop: str = "?"
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "engine.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env.update(
            CALLCENTER_DATA_DIR=str(self.data_dir),
            CALLCENTER_RECORDINGS_DIR=str(self.data_dir / "recordings"),
            CALLCENTER_RTP_PORT_MIN=str(self.rtp_range[0]),
            CALLCENTER_RTP_PORT_MAX=str(self.rtp_range[1]),
            CALLCENTER_LOG_LEVEL="INFO",
        )
        return env

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        env = self._env()
        try:
            migrated = subprocess.run(
                [sys.executable, "-m", "callcenter", "migrate"],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError("`callcenter migrate` took over 60 s") from exc
        if migrated.returncode != 0:
            raise BenchError(
                f"`callcenter migrate` failed ({migrated.returncode}):\n"
                + migrated.stderr.decode(errors="replace")[-2000:]
            )
        command = [sys.executable]
        if self.profile is not None:
            command += ["-m", "cProfile", "-o", str(self.profile)]
        command += ["-m", "callcenter", "serve", "--sip-host", HOST, "--sip-port", "0"]
        command += ["--data-dir", str(self.data_dir)]
        if self.cpu is not None:
            command = ["taskset", "-c", str(self.cpu), *command]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if (loop := re.search(r"event loop (\S+?)\)", text)) is not None:
                self.loop = "uvloop" if "uvloop" in loop.group(1) else "asyncio"
            if (ready := re.search(r"ready: .*SIP: udp\S* (\S+):(\d+)", text)) is not None:
                self.sip_port = int(ready.group(2))
                return
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the engine exited ({self.proc.returncode}) before `ready:`:\n"
                    + self.log_tail()
                )
            time.sleep(0.05)
        raise BenchError(
            f"the engine logged no `ready:` line in {ENGINE_START_TIMEOUT:.0f} s:\n"
            + self.log_tail()
        )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("the engine is not running")
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"the engine died (exit {code}):\n" + self.log_tail())

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # graceful: BYE to any call left, flush
        try:
            proc.wait(ENGINE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def problems(self) -> list[str]:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if " WARNING " in ln or " ERROR " in ln or "Traceback" in ln]


# --- SIP UAC -----------------------------------------------------------------------------------

_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
}


@dataclass(slots=True)
class SipMessage:
    start: str
    headers: dict[str, list[str]]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split()[1])

    def get(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""

    @property
    def cseq_method(self) -> str:
        parts = self.get("cseq").split()
        return parts[1].upper() if len(parts) == 2 else ""


def parse_sip(data: bytes) -> SipMessage | None:
    """Just enough SIP parsing for a benchmark peer (the engine's answers are well formed)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    if not lines or not lines[0]:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    return SipMessage(lines[0], headers, body)


@dataclass(eq=False)
class SipCall:
    index: int
    rtp_port: int
    """Our RTP port, offered in the SDP."""
    call_id: str = field(default_factory=lambda: secrets.token_hex(8) + "@bench")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    invite_branch: str = field(default_factory=lambda: "z9hG4bK" + secrets.token_hex(8))
    to_tag: str | None = None
    remote_target: str | None = None
    engine_rtp: tuple[str, int] | None = None
    provisional: bool = False
    invite_final: asyncio.Future[int] | None = None
    bye_final: asyncio.Future[int] | None = None
    ended_by_engine: bool = False
    error: str | None = None


class SipUac(asyncio.DatagramProtocol):
    """A UDP UAC for many calls at once: one socket, responses matched by Call-ID."""

    def __init__(self, target_port: int) -> None:
        self.target = (HOST, target_port)
        self.request_uri = f"sip:echo@{HOST}:{target_port}"
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.calls: dict[str, SipCall] = {}
        self.strays = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(self.transport.get_extra_info("sockname")[1])

    def _send(self, text: str, addr: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), addr or self.target)

    def _common(self, call: SipCall, method: str, cseq: int, branch: str) -> str:
        to = f"<{self.request_uri}>" + (f";tag={call.to_tag}" if call.to_tag else "")
        return (
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:bench@{HOST}>;tag={call.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {call.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
        )

    def _invite(self, call: SipCall) -> str:
        sdp = (
            "v=0\r\n"
            f"o=- {call.index + 1} 1 IN IP4 {HOST}\r\n"
            "s=-\r\n"
            f"c=IN IP4 {HOST}\r\n"
            "t=0 0\r\n"
            f"m=audio {call.rtp_port} RTP/AVP 0\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=ptime:20\r\n"
            "a=sendrecv\r\n"
        )
        return (
            f"INVITE {self.request_uri} SIP/2.0\r\n"
            + self._common(call, "INVITE", 1, call.invite_branch)
            + f"Contact: <sip:bench@{HOST}:{self.port}>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n" + sdp
        )

    def _ack(self, call: SipCall, *, for_2xx: bool) -> str:
        # §13.2.2.4: the ACK of a 2xx is a new transaction to the remote target; §17.1.1.3:
        # the ACK of an error response reuses the INVITE's branch and Request-URI.
        uri = (call.remote_target or self.request_uri) if for_2xx else self.request_uri
        branch = "z9hG4bK" + secrets.token_hex(8) if for_2xx else call.invite_branch
        return (
            f"ACK {uri} SIP/2.0\r\n"
            + self._common(call, "ACK", 1, branch)
            + "Content-Length: 0\r\n\r\n"
        )

    def _bye(self, call: SipCall) -> str:
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (
            f"BYE {call.remote_target or self.request_uri} SIP/2.0\r\n"
            + self._common(call, "BYE", 2, branch)
            + "Content-Length: 0\r\n\r\n"
        )

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        message = parse_sip(data)
        if message is None:
            self.strays += 1
            return
        call = self.calls.get(message.get("call-id"))
        if message.is_response:
            if call is None:
                self.strays += 1
            else:
                self._response(call, message)
        else:
            self._request(call, message, (str(addr[0]), int(addr[1])))

    def _response(self, call: SipCall, message: SipMessage) -> None:
        status = message.status
        method = message.cseq_method
        if method == "INVITE":
            if status < 200:
                call.provisional = True
                return
            to_tag = re.search(r";\s*tag=([^;>\s]+)", message.get("to"))
            if status < 300:
                call.to_tag = to_tag.group(1) if to_tag else None
                contact = re.search(r"<([^>]+)>", message.get("contact"))
                call.remote_target = contact.group(1) if contact else None
                sdp = message.body.decode(errors="replace")
                port = re.search(r"^m=audio (\d+)", sdp, re.M)
                conn = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
                if port and conn:
                    call.engine_rtp = (conn.group(1), int(port.group(1)))
                self._send(self._ack(call, for_2xx=True))  # again for every retransmitted 2xx
            else:
                if call.to_tag is None and to_tag:
                    call.to_tag = to_tag.group(1)
                self._send(self._ack(call, for_2xx=False))
            if call.invite_final is not None and not call.invite_final.done():
                call.invite_final.set_result(status)
        elif (
            method == "BYE"
            and status >= 200
            and call.bye_final is not None
            and not call.bye_final.done()
        ):
            call.bye_final.set_result(status)

    def _request(self, call: SipCall | None, message: SipMessage, addr: tuple[str, int]) -> None:
        """A request from the engine (its BYE, say): answer 200 (481 if we know no call)."""
        method = message.start.split(" ", 1)[0]
        if method == "ACK":
            return
        status = "200 OK" if call is not None else "481 Call/Transaction Does Not Exist"
        if call is not None and method == "BYE":
            call.ended_by_engine = True
        vias = "".join(f"Via: {v}\r\n" for v in message.headers.get("via", []))
        self._send(
            f"SIP/2.0 {status}\r\n{vias}"
            f"From: {message.get('from')}\r\nTo: {message.get('to')}\r\n"
            f"Call-ID: {message.get('call-id')}\r\nCSeq: {message.get('cseq')}\r\n"
            "Content-Length: 0\r\n\r\n",
            addr,
        )

    async def _transact(
        self, data: str, final: asyncio.Future[int], timeout: float, retransmit: Callable[[], bool]
    ) -> int | None:
        """Send, retransmit on T1 doubling to T2 while `retransmit()`, wait for the final."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = T1
        self._send(data)
        while not final.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.wait({final}, timeout=min(interval, remaining))
            if not final.done() and retransmit():
                self._send(data)
            interval = min(interval * 2, T2)
        return final.result()

    async def invite(self, call: SipCall) -> bool:
        """INVITE -> 200 (with SDP) -> ACK; False with `call.error` set otherwise."""
        self.calls[call.call_id] = call
        call.invite_final = asyncio.get_running_loop().create_future()
        status = await self._transact(
            self._invite(call), call.invite_final, INVITE_TIMEOUT, lambda: not call.provisional
        )
        if status is None:
            call.error = "INVITE timed out"
        elif status != 200:
            call.error = f"INVITE answered {status}"
        elif call.engine_rtp is None:
            call.error = "200 without an SDP answer"
        return call.error is None

    async def bye(self, call: SipCall) -> bool:
        """BYE -> 200; False with `call.error` set otherwise."""
        call.bye_final = asyncio.get_running_loop().create_future()
        status = await self._transact(self._bye(call), call.bye_final, BYE_TIMEOUT, lambda: True)
        if status != 200:
            call.error = "BYE timed out" if status is None else f"BYE answered {status}"
        return call.error is None


# --- RTP generator and sink --------------------------------------------------------------------


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP socket: sends numbered PCMU frames, records the echoes' arrival."""

    def __init__(self, index: int, capacity: int) -> None:
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.remote: tuple[str, int] | None = None
        self.sent: list[float] = []
        self.capacity = capacity
        self.seen = bytearray(capacity)
        self.recv_n: list[int] = []
        self.recv_t: list[float] = []
        self.others = 0  # the echo's silence (nothing buffered) and anything not ours
        self.crossed = 0  # our packets of another call: must stay 0
        self.duplicates = 0
        self._seq0 = secrets.randbits(16)
        self._ts0 = secrets.randbits(32)
        self._id = bytes((0x80 | (index & 0x7F), 0x80 | ((index >> 7) & 0x7F)))
        # A -10 dBFS-ish tone as filler: the content does not change the engine's cost.
        tone = bytes(0x80 | ((i * 37) % 0x60) for i in range(PAYLOAD_BYTES))
        self.buf = bytearray(RTP_HEADER) + bytearray(MAGIC + self._id + b"\x80\x80\x80") + tone[8:]
        struct.pack_into("!BBHII", self.buf, 0, 0x80, 0, 0, 0, secrets.randbits(32))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(self.transport.get_extra_info("sockname")[1])

    def send(self, now: float) -> None:
        n = len(self.sent)
        if n >= self.capacity or self.transport is None or self.remote is None:
            return
        buf = self.buf
        buf[1] = 0x80 if n == 0 else 0x00  # marker on the first packet, PT 0 (PCMU)
        struct.pack_into(
            "!HI", buf, 2, (self._seq0 + n) & 0xFFFF, (self._ts0 + 160 * n) & 0xFFFF_FFFF
        )
        buf[17] = 0x80 | (n & 0x7F)
        buf[18] = 0x80 | ((n >> 7) & 0x7F)
        buf[19] = 0x80 | ((n >> 14) & 0x7F)
        self.sent.append(now)
        self.transport.sendto(bytes(buf), self.remote)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = time.monotonic()
        offset = RTP_HEADER + 4 * (data[0] & 0x0F) if data else 0
        if len(data) - offset != PAYLOAD_BYTES or data[offset : offset + 3] != MAGIC:
            self.others += 1
            return
        if data[offset + 3 : offset + 5] != self._id:
            self.crossed += 1
            return
        n = (
            (data[offset + 5] & 0x7F)
            | ((data[offset + 6] & 0x7F) << 7)
            | ((data[offset + 7] & 0x7F) << 14)
        )
        if n >= len(self.sent):
            self.others += 1
        elif self.seen[n]:
            self.duplicates += 1
        else:
            self.seen[n] = 1
            self.recv_n.append(n)
            self.recv_t.append(now)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Generator:
    """One timer for every stream: each tick sends one packet per stream, on the absolute
    schedule `first + k * 20 ms`; a tick later than one interval skips the missed slots."""

    def __init__(self, streams: Sequence[RtpStream], first: float) -> None:
        self.streams = streams
        self.first = first
        self.k = 0
        self.late_ticks = 0
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        due = self.first + self.k * FRAME
        delay = due - time.monotonic()
        self.handle = asyncio.get_running_loop().call_later(max(0.0, delay), self._tick)

    def _tick(self) -> None:
        lateness = time.monotonic() - (self.first + self.k * FRAME)
        if lateness > FRAME:
            self.late_ticks += 1
            self.k += int(lateness / FRAME)
        mono = time.monotonic
        for stream in self.streams:
            stream.send(mono())
        self.k += 1
        self._schedule()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def tick_phase(arrivals: Sequence[float]) -> float:
    """Where in the 20 ms cycle the engine's ticks fall, from echo arrival times: the start of
    the arrivals' cluster on the circle (the end of the largest gap between them)."""
    if not arrivals:
        raise BenchError("no echo packet arrived from the probe call")
    v = sorted(t % FRAME for t in arrivals)
    gaps = [(v[i + 1] - v[i], v[i + 1]) for i in range(len(v) - 1)]
    gaps.append((v[0] + FRAME - v[-1], v[0]))
    return max(gaps)[1]


# --- scenarios ---------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    calls: int
    failed_calls: int
    calls_held: int | None = None
    loss_pct: float | None = None
    added_latency_p50_ms: float | None = None
    added_latency_p99_ms: float | None = None
    round_trip_p50_ms: float | None = None
    round_trip_p99_ms: float | None = None
    engine_cpu_pct: float = 0.0
    rss_mb: float = 0.0
    driver_cpu_pct: float = 0.0
    calls_per_s: float | None = None
    seconds: float = 0.0
    machine: str = ""
    loop: str = ""
    notes: list[str] = field(default_factory=list)


async def _open_stream(index: int, capacity: int) -> RtpStream:
    stream = RtpStream(index, capacity)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: stream, local_addr=(HOST, 0))
    return stream


async def _bounded(works: Sequence[Coroutine[Any, Any, T]], limit: int) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(work: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await work

    return await asyncio.gather(*(one(w) for w in works))


async def probe_phase(uac: SipUac) -> float:
    """One call on the idle engine: the echo sends a packet every tick (silence when it has
    nothing), so its arrival times give the media clock's phase."""
    stream = await _open_stream(0, 1)
    arrivals: list[float] = []
    original = stream.datagram_received

    def record(data: bytes, addr: tuple[str | Any, int]) -> None:
        arrivals.append(time.monotonic())
        original(data, addr)

    stream.datagram_received = record  # type: ignore[method-assign]
    call = SipCall(index=0, rtp_port=stream.port)
    try:
        if not await uac.invite(call):
            raise BenchError(f"the probe call failed: {call.error}")
        await asyncio.sleep(1.5)
        if not await uac.bye(call):
            raise BenchError(f"the probe call's BYE failed: {call.error}")
    finally:
        stream.close()
    return tick_phase(arrivals[10:])  # skip the first ticks (the leg was being set up)


async def echo_concurrent(
    uac: SipUac, engine: Engine, n: int, seconds: float, phase: float, depth: int
) -> Result:
    capacity = int((WARMUP + seconds + 2 * DRAIN + 5) / FRAME)
    streams = [await _open_stream(i, capacity) for i in range(n)]
    calls = [SipCall(index=i, rtp_port=s.port) for i, s in enumerate(streams)]
    result = Result("echo_concurrent", n, 0, seconds=seconds)
    generator: Generator | None = None
    try:
        t_setup = time.monotonic()
        answered = await _bounded([uac.invite(c) for c in calls], SIGNALLING_CONCURRENCY)
        setup_s = time.monotonic() - t_setup
        live = [s for s, c, ok in zip(streams, calls, answered, strict=True) if ok]
        for stream, call in zip(streams, calls, strict=True):
            stream.remote = call.engine_rtp
        # First send half a tick after an engine tick, so no packet straddles one.
        now = time.monotonic()
        first = now + 0.1 + ((phase + FRAME / 2 - (now + 0.1)) % FRAME)
        generator = Generator(live, first)
        generator.start()
        window_start = first + WARMUP
        window_end = window_start + seconds
        await asyncio.sleep(window_start - time.monotonic())
        cpu0, mine0, t0 = _cpu_seconds(engine.pid), time.process_time(), time.monotonic()
        await asyncio.sleep(window_end - time.monotonic())
        cpu1, mine1, t1 = _cpu_seconds(engine.pid), time.process_time(), time.monotonic()
        result.rss_mb = _rss_mb(engine.pid)
        result.engine_cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
        result.driver_cpu_pct = 100 * (mine1 - mine0) / (t1 - t0)
        generator.stop()
        await asyncio.sleep(DRAIN)
        result.calls_held = sum(1 for c, ok in zip(calls, answered, strict=True) if ok) - sum(
            1 for c in calls if c.ended_by_engine
        )
        byes = [uac.bye(c) for c, ok in zip(calls, answered, strict=True) if ok]
        await _bounded(byes, SIGNALLING_CONCURRENCY)
    finally:
        if generator is not None:
            generator.stop()
        for stream in streams:
            stream.close()
        for call in calls:
            uac.calls.pop(call.call_id, None)
    failed = [c for c in calls if c.error is not None or c.ended_by_engine]
    result.failed_calls = len(failed)
    errors = sorted({c.error or "hung up by the engine" for c in failed})
    if errors:
        result.notes.append("failures: " + "; ".join(errors[:3]))
    result.notes.append(f"set up in {setup_s:.2f} s")

    # Loss and latency over the packets sent inside the window.
    expected = received = 0
    rtts: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    added: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    inherent_base = depth * FRAME
    crossed = 0
    for stream in streams:
        if not stream.sent:
            continue
        sent = np.asarray(stream.sent)
        in_window = (sent >= window_start) & (sent <= window_end)
        expected += int(in_window.sum())
        crossed += stream.crossed
        if not stream.recv_n:
            continue
        numbers = np.asarray(stream.recv_n)
        keep = in_window[numbers]
        received += int(keep.sum())
        s = sent[numbers[keep]]
        rtt = np.asarray(stream.recv_t)[keep] - s
        rtts.append(rtt)
        added.append(rtt - (((phase - s) % FRAME) + inherent_base))
    if crossed:
        result.notes.append(f"{crossed} packets came back on the wrong call")
    if generator is not None and generator.late_ticks:
        result.notes.append(f"generator late ticks: {generator.late_ticks}")
    if expected:
        result.loss_pct = 100 * (1 - received / expected)
    if rtts:
        all_rtt = np.concatenate(rtts) * 1e3
        all_added = np.concatenate(added) * 1e3
        result.round_trip_p50_ms = float(np.percentile(all_rtt, 50))
        result.round_trip_p99_ms = float(np.percentile(all_rtt, 99))
        result.added_latency_p50_ms = float(np.percentile(all_added, 50))
        result.added_latency_p99_ms = float(np.percentile(all_added, 99))
        extra = float(np.mean(all_added > FRAME * 1e3 * 0.75)) * 100
        if extra:
            result.notes.append(f"{extra:.2f} % of frames delayed by extra jitter-buffer frames")
    return result


class _Sink(asyncio.DatagramProtocol):
    """Where the setup scenario's calls point their media: counts and discards."""

    def __init__(self) -> None:
        self.packets = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets += 1


async def call_setup(uac: SipUac, engine: Engine, total: int, concurrency: int) -> Result:
    loop = asyncio.get_running_loop()
    sink = _Sink()
    await loop.create_datagram_endpoint(lambda: sink, local_addr=(HOST, 0))
    assert sink.transport is not None
    sink_port = int(sink.transport.get_extra_info("sockname")[1])
    calls = [SipCall(index=i, rtp_port=sink_port) for i in range(total)]

    async def one(call: SipCall) -> bool:
        return await uac.invite(call) and await uac.bye(call)

    try:
        cpu0, t0 = _cpu_seconds(engine.pid), time.monotonic()
        outcomes = await _bounded([one(c) for c in calls], concurrency)
        cpu1, t1 = _cpu_seconds(engine.pid), time.monotonic()
    finally:
        sink.transport.close()
        for call in calls:
            uac.calls.pop(call.call_id, None)
    failed = [c for c, ok in zip(calls, outcomes, strict=True) if not ok or c.ended_by_engine]
    result = Result(
        "call_setup",
        total,
        len(failed),
        engine_cpu_pct=100 * (cpu1 - cpu0) / (t1 - t0),
        rss_mb=_rss_mb(engine.pid),
        calls_per_s=total / (t1 - t0),
        seconds=t1 - t0,
    )
    result.notes.append(f"{concurrency} in flight; INVITE-200-ACK-BYE-200 each")
    if failed:
        result.notes.append("failures: " + "; ".join(sorted({c.error or "?" for c in failed})[:3]))
    return result


async def run_all(engine: Engine, args: argparse.Namespace, machine: str) -> list[Result]:
    loop = asyncio.get_running_loop()
    uac = SipUac(engine.sip_port)
    transport, _ = await loop.create_datagram_endpoint(lambda: uac, local_addr=(HOST, 0))
    results: list[Result] = []
    depth = jitter_depth_frames()
    try:
        phase = await asyncio.wait_for(probe_phase(uac), 30)
        last_good: int | None = None
        for n in args.calls:
            engine.check_alive()
            print(f"-- echo_concurrent: {n} calls for {args.seconds:g} s", file=sys.stderr)
            budget = args.seconds + 60 + n * 0.2
            result = await asyncio.wait_for(
                echo_concurrent(uac, engine, n, args.seconds, phase, depth), budget
            )
            results.append(result)
            await asyncio.sleep(1.0)  # let the engine close the legs before the next N
            if result.failed_calls > MAX_FAILED_FRACTION * n:
                result.notes.append(
                    f"over {MAX_FAILED_FRACTION:.0%} failed: escalation stopped"
                    + (f"; last good N = {last_good}" if last_good else "")
                )
                break
            last_good = n
        engine.check_alive()
        print(
            f"-- call_setup: {args.setup_calls} calls, {args.setup_concurrency} in flight",
            file=sys.stderr,
        )
        results.append(
            await asyncio.wait_for(
                call_setup(uac, engine, args.setup_calls, args.setup_concurrency),
                60 + args.setup_calls * 0.5,
            )
        )
        engine.check_alive()
    finally:
        transport.close()
    for result in results:
        result.machine = machine
        result.loop = engine.loop
    return results


# --- driver ------------------------------------------------------------------------------------


def machine_description(pinned: bool) -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pinning = "engine on CPU 0, load on CPU 1" if pinned else "not pinned"
    return (
        f"{platform.system()} {platform.machine()}, {model or 'cpu ?'}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}; {pinning}"
    )


def rtp_range(max_calls: int) -> tuple[int, int]:
    """A random even-aligned port range below the ephemeral range, sized for the largest N
    plus the probe and setup calls (the pool skips ports others hold)."""
    size = 2 * (max_calls + 300)
    base = 21000 + 2 * secrets.randbelow((32000 - 21000 - size) // 2)
    return base, base + size - 1


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: Sequence[Result]) -> str:
    head = (
        "| scenario | calls | held | failed | loss % | RTT p50 / p99 ms | added p50 / p99 ms "
        "| engine CPU % | RSS MB | calls/s |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in results:
        rows.append(
            f"| {r.scenario} | {r.calls} | {'–' if r.calls_held is None else r.calls_held} "
            f"| {r.failed_calls} | {_fmt(r.loss_pct, 3)} "
            f"| {_fmt(r.round_trip_p50_ms)} / {_fmt(r.round_trip_p99_ms)} "
            f"| {_fmt(r.added_latency_p50_ms, 2)} / {_fmt(r.added_latency_p99_ms, 2)} "
            f"| {r.engine_cpu_pct:.1f} | {r.rss_mb:.1f} | {_fmt(r.calls_per_s)} |"
        )
    return "\n".join(rows)


def run_driver(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop for the driver too, when installed: the load generator needs the headroom."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.bench_calls", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--calls",
        type=lambda s: sorted({int(x) for x in s.split(",") if x}),
        default=[50, 100, 200],
        help="concurrent call counts, comma-separated (default 50,100,200)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per N")
    parser.add_argument("--setup-calls", type=int, default=200)
    parser.add_argument("--setup-concurrency", type=int, default=20)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--engine-profile",
        type=Path,
        help="run the engine under cProfile, write the stats here and print the top functions "
        "(CPU figures are then inflated by the profiler)",
    )
    args = parser.parse_args(argv)
    if not args.calls or min(args.calls) < 1 or args.seconds <= 0:
        parser.error("--calls needs positive counts and --seconds a positive duration")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if pinned:
        os.sched_setaffinity(0, {1})  # the load generator (this process) on CPU 1
    else:
        print("warning: fewer than 2 CPUs or no taskset: nothing is pinned", file=sys.stderr)
    machine = machine_description(pinned)
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        engine = Engine(
            Path(tmp),
            rtp_range(max(args.calls)),
            0 if pinned else None,
            profile=args.engine_profile.resolve() if args.engine_profile else None,
        )
        try:
            engine.start()
            print(
                f"-- engine pid {engine.pid} ({engine.loop}) on SIP port {engine.sip_port}",
                file=sys.stderr,
            )
            results = run_driver(run_all(engine, args, machine))
        except BenchError as exc:
            print(f"bench_calls: {exc}", file=sys.stderr)
            return 1
        finally:
            engine.stop()
        problems = engine.problems()
    args.json.write_text(
        json.dumps([vars(r) for r in results], indent=2, ensure_ascii=False) + "\n"
    )
    print(table(results))
    for r in results:
        if r.notes:
            print(f"- {r.scenario} {r.calls}: {'; '.join(r.notes)}")
    depth = jitter_depth_frames()
    print(
        f"\nRTT = send -> echo back; it contains the echo's inherent delay: the wait for the next "
        f"20 ms media tick (~10 ms: we send mid-tick) + the jitter buffer's {depth} frame(s) "
        f"({depth * 20} ms). added = RTT minus that inherent delay. Engine: {engine.loop}, "
        f"{machine}. Results in {args.json}; {time.monotonic() - started:.0f} s in all."
    )
    if problems:
        print(f"engine log: {len(problems)} warning/error lines, first: {problems[0]}")
    if args.engine_profile:
        import pstats

        pstats.Stats(str(args.engine_profile)).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
