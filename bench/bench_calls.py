"""Call-load benchmark (issue 3): N concurrent calls through a real `callcenter serve`.

    .venv/bin/python -m bench.bench_calls [--scenarios echo,bridged] [--quick]
        [--calls 50,100,200] [--seconds 20] [--setup-calls 200] [--setup-concurrency 20]
        [--bridged 100,250,500,750,1000] [--bridged-seconds 10]
        [--bridged-setup-calls 1000] [--bridged-setup-concurrency 50] [--measure 200]
        [--engine-profile FILE] [--log-dir DIR] [--json FILE]

`--quick` is a smoke run of everything in ~30 s; `--scenarios bridged` skips the echo engine.

The engine runs as a subprocess pinned to CPU 0 (`taskset -c 0`); this driver pins itself to
CPU 1 and is the load: an asyncio SIP UAC over UDP (INVITE with an SDP offer, 200, ACK, BYE,
200; retransmissions on T1 doubling; a 401 answered with digest credentials) and, per call,
an RTP socket that streams PCMU at 20 ms from one shared timer on an absolute schedule (not
N timers). Each scenario gets its own engine and data directory:

- `echo`: calls from a trunk (`CALLCENTER_TRUNKS`: loopback 127.0.0.1/32, so no digest) to
  the engine's built-in `echo` extension: `echo_concurrent` per N, then `call_setup`.
- `bridged`: the engine as a B2BUA. The driver is a user (`callcenter user add bench
  --sip-password ...`) that answers each INVITE's 401 with digest (one 401 round per call:
  a fresh nonce each time) and dials `+1555...` numbers; the engine places each call out
  through the only trunk, `carrier` (peers 192.0.2.1/32, so nothing local is a trunk, and
  outbound to SIPp: `sipp -sn uas -rtp_echo`, pinned to CPU 1 with the driver: it is load).
  The media path is driver -> engine caller leg -> room -> engine callee leg -> SIPp's echo
  port -> callee leg -> room -> caller leg -> driver. `bridged_setup` first (on a fresh
  engine: INVITE-401-INVITE-200-ACK-BYE-200 with SIPp answering the other leg), then
  `bridged` per N. There is no loopback trunk here: calls from a trunk never go out.

Each packet's payload carries the call's index and the packet's number, written in bytes that
survive G.711 decode and re-encode (µ-law round-trips every byte but 0x7F, so the digits are
0x80 | 7 bits); the sink matches what comes back to the send time of that number. SIPp's
rtp_echo returns datagrams as they are.

Latency, echo. The echo answers each frame at a media-clock tick, after its jitter buffer: a
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

Latency, bridged. The inherent delay of the bridge depends on what the room does, so a probe
measures it on the idle engine before the load: one bridged call for 2 s, and the same
stream sent straight to SIPp's echo port (no engine: the "bypass" round trip of loopback and
SIPp alone). A room of two legs on one codec may forward packets as they arrive (no tick,
no jitter buffer): the probe's round trip is then within a few ms of the bypass, and
added = round trip - bypass p50, i.e. everything the engine's two legs and room add, both
ways. The generator then spreads the calls evenly over the 20 ms (as independent phones
do), so one burst of N sends does not queue the echoes behind the driver itself. A room
that mixes instead answers on ticks (a jitter buffer on each leg, twice per round trip):
the probe then gives the tick phase and the constant part C = p50(RTT - wait for the next
tick); the generator sends mid-tick in one burst (as for echo) and added = RTT - (wait for
the next tick + C). Either way the bridged rows say which one the probe saw.

Loss counts the packets sent after a 0.5 s warm-up, within the measuring window, that never
came back (lost on the way in, dropped late by a jitter buffer, lost by SIPp, or lost on the
way out). To say where, each row notes the kernel's per-socket receive-buffer drops over the
window (/proc/net/udp) for the engine's sockets, SIPp's echo socket and ours. SIPp's echo
is one socket for every call, of the default size (-rtp_buffsize does not reach it: 208 KiB,
a few hundred datagrams), so a stall of the engine followed by a burst overflows it first;
the driver lowers its own priority (nice 5) so that SIPp's echo thread preempts it on CPU 1.

Sampling: above `--measure` calls (200), only ~200 calls read their echoes (every k-th call
of each send slot); the others only send, and nobody reads their sockets, so the kernel
drops what the engine sends them once the engine has done all its work. The engine's load
is the same; the driver's CPU goes to sending, which keeps CPU 1 from being the limit.

Engine CPU is utime + stime from /proc/<pid>/stat over the window (% of one core); RSS is
VmRSS at its end; engine_sys_pct is the kernel's part of it. `load_cpu_pct` is the CPU
of the load generator (driver + SIPp, process accounting like the engine's); near 100 % of
CPU 1 the figures are bounded by the load generator, not the engine: the rows say so.
`cpu0_busy_pct` and `cpu1_busy_pct` are the CPUs' busy time from /proc/stat (softirq and
other processes included; on this kind of VM they disagree with the process accounting by
10-20 points either way, so they are only a hint); before each row the driver also measures
how busy the machine is with our side idle (`background_cpu_pct`: other processes). The setup
scenarios run their calls as fast as they can with bounded concurrency. Results go to
bench/results.json and a Markdown table to stdout. N escalation stops at the first N whose
failed calls exceed 5 % (bridged: or whose loss reaches 1 %).

Transactions: the engine bounds live SIP transactions (EndpointConfig.max_transactions,
10,000) and refuses new server transactions past it with a stateless "503 Service
Unavailable". A bridged call leaves 5 behind: the 401'd INVITE (Timer I, 5 s), our INVITE's
2xx (Timer L, 32 s), the INVITE to SIPp (Timer M, 32 s), the BYE (Timer J, 32 s) and the
BYE to SIPp (Timer K, 5 s): ~106 transaction-seconds per call, so a sustained rate above
~94 calls/s reaches the bound after ~30 s whatever the CPU. The runs are ordered to stay
below it (bridged_setup first, on a fresh engine, 1000 calls); a row with 503s says so.
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
from callcenter.sip.digest import (
    Challenge,
    DigestAccount,
    DigestClient,
    DigestParseError,
    make_cnonce,
    parse_challenge,
)

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
MAX_LOSS_PCT = 1.0
"""Bridged escalation stops at the first N whose loss reaches this (clear loss)."""
LOAD_SATURATED_PCT = 90.0
"""CPU 1 (driver + SIPp) this busy: the load generator, not the engine, may be the limit."""
ENGINE_START_TIMEOUT = 30.0
ENGINE_STOP_TIMEOUT = 15.0
MAGIC = b"\x55\xaa\x33"
"""Payload bytes 0-2 of our packets (none is 0x7F, so they survive µ-law decode/encode)."""
RESULTS = Path(__file__).resolve().parent / "results.json"
REALM = "callcenter"
USER = "bench"
LOOPBACK_TRUNK = {"name": "loopback", "peers": [f"{HOST}/32"]}
CARRIER_PEERS = ["192.0.2.1/32"]
"""TEST-NET-1: nothing here is the carrier, so every local INVITE must authenticate."""
SPREAD_SLOTS = 10
"""Bridged calls (forwarded) send in this many groups evenly spaced over the 20 ms."""
SIPP_BUFFER = 4 * 1024 * 1024
"""SIPp's echo socket buffers (-rtp_buffsize; capped by net.core.rmem_max)."""

T = TypeVar("T")
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def jitter_depth_frames() -> int:
    """The engine's configured jitter-buffer depth (frames) of an RTP leg, read from the code
    so the inherent delay we subtract follows it."""
    return RtpLeg(0, family=socket.AF_INET).jitter.depth


# --- processes: the engine and SIPp ------------------------------------------------------------


def _cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ": state is field 3, utime field 14, stime field 15.
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds."""
    return sum(_cpu_times(pid))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _cpu_busy(cpu: int) -> tuple[float, float]:
    """(busy, total) jiffies of one CPU from /proc/stat (busy: all but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:9]]
            total = float(sum(values))
            return total - values[3] - values[4], total
    return math.nan, math.nan


async def _background_busy(seconds: float = 0.5) -> float:
    """How busy both CPUs are (% of one core) while our side is idle: other processes."""
    before = [_cpu_busy(c) for c in (0, 1)]
    t0 = time.process_time()
    await asyncio.sleep(seconds)
    after = [_cpu_busy(c) for c in (0, 1)]
    ours = time.process_time() - t0  # the driver's timers (tiny)
    busy = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    total = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / 2
    return max(0.0, 100 * busy / total - 100 * ours / seconds) if total > 0 else 0.0


def _note_background(result: Result, busy: float) -> None:
    result.background_cpu_pct = busy
    if busy > 10:
        result.notes.append(
            f"the machine was {busy:.0f} % busy before this row with our side idle: other "
            "processes disturb it"
        )


def _udp_drops() -> dict[int, int]:
    """Receive-buffer drops of each bound UDP/IPv4 socket, by local port (/proc/net/udp)."""
    drops: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 13:
                port = int(parts[1].rsplit(":", 1)[1], 16)
                drops[port] = drops.get(port, 0) + int(parts[-1])
    return drops


def _bound_udp_ports() -> set[int]:
    return set(_udp_drops())


def _free_udp_port(low: int, high: int, *, also: Sequence[int] = ()) -> int:
    """An even port in low..high that we can bind now, with `port + k` free for each k in
    `also` (SIPp binds its echo port and +2)."""
    for _ in range(200):
        port = low + 2 * secrets.randbelow((high - low) // 2)
        socks: list[socket.socket] = []
        try:
            for p in (port, *(port + k for k in also)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((HOST, p))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise BenchError(f"no free UDP port in {low}-{high}")


@dataclass
class Engine:
    """`callcenter serve` in a subprocess: migrate, add users, start, wait for `ready:`, stop
    (SIGINT)."""

    data_dir: Path
    rtp_range: tuple[int, int]
    cpu: int | None
    trunks: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    """User name -> SIP password, created before the engine starts."""
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    sip_port: int = 0
    loop: str = "?"
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "engine.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env.update(
            CALLCENTER_DATA_DIR=str(self.data_dir),
            CALLCENTER_RECORDINGS_DIR=str(self.data_dir / "recordings"),
            CALLCENTER_RTP_PORT_MIN=str(self.rtp_range[0]),
            CALLCENTER_RTP_PORT_MAX=str(self.rtp_range[1]),
            CALLCENTER_SIP_REALM=REALM,
            CALLCENTER_TRUNKS=json.dumps(self.trunks),
            CALLCENTER_LOG_LEVEL="INFO",
        )
        return env

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _cli(self, *args: str, what: str) -> None:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "callcenter", *args],
                env=self._env(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"`callcenter {what}` took over 60 s") from exc
        if done.returncode != 0:
            raise BenchError(
                f"`callcenter {what}` failed ({done.returncode}):\n"
                + done.stderr.decode(errors="replace")[-2000:]
            )

    def start(self) -> None:
        env = self._env()
        self._cli("migrate", what="migrate")
        for name, password in self.users.items():
            self._cli("user", "add", name, "--sip-password", password, what=f"user add {name}")
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

    def owns_port(self, port: int) -> bool:
        low, high = self.rtp_range
        return low <= port <= high

    def problems(self) -> list[str]:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if " WARNING " in ln or " ERROR " in ln or "Traceback" in ln]


@dataclass
class Sipp:
    """`sipp -sn uas -rtp_echo` in a subprocess: answers every INVITE (180, 200 with PCMU on
    its one echo port), waits for the BYE; echoes every datagram to its sender."""

    workdir: Path
    cpu: int | None
    sip_port: int = 0
    media_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "sipp.log"

    def start(self) -> None:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise BenchError("sipp not found (Debian: sip-tester; `make debian-test-packages`)")
        self.sip_port = _free_udp_port(12000, 16000)
        self.media_port = _free_udp_port(16000, 20000, also=(2,))
        command = [
            sipp,
            "-sn",
            "uas",
            "-rtp_echo",
            "-t",
            "u1",
            "-i",
            HOST,
            "-p",
            str(self.sip_port),
            "-mi",
            HOST,
            "-mp",
            str(self.media_port),
            "-rtp_buffsize",
            str(SIPP_BUFFER),
            "-buff_size",
            str(SIPP_BUFFER),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(self.workdir / "sipp-errors.log"),
        ]
        if self.cpu is not None:
            command = ["taskset", "-c", str(self.cpu), *command]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if {self.sip_port, self.media_port} <= _bound_udp_ports():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"SIPp did not start:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("SIPp is not running")
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.log_path, self.workdir / "sipp-errors.log"):
            with contextlib.suppress(OSError):
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text or "(no log)"

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"SIPp died (exit {code}):\n" + self.log_tail())

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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

    @property
    def cseq_number(self) -> int:
        parts = self.get("cseq").split()
        return int(parts[0]) if parts and parts[0].isdigit() else -1


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
    uri: str = ""
    """The Request-URI (and To); the UAC fills it in from the index."""
    call_id: str = field(default_factory=lambda: secrets.token_hex(8) + "@bench")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    invite_branch: str = field(default_factory=lambda: "z9hG4bK" + secrets.token_hex(8))
    cseq: int = 1
    """The CSeq of the current INVITE (2 after a 401); the BYE takes the next."""
    authorization: str | None = None
    challenges: list[str] = field(default_factory=list)
    to_tag: str | None = None
    remote_target: str | None = None
    engine_rtp: tuple[str, int] | None = None
    provisional: bool = False
    invite_final: asyncio.Future[int] | None = None
    bye_final: asyncio.Future[int] | None = None
    ended_by_engine: bool = False
    status: int = 0
    """The final status of the last INVITE (0: none yet)."""
    reason: str = ""
    """Its reason phrase (503 says why: no media ports, or the transaction bound)."""
    error: str | None = None


class SipUac(asyncio.DatagramProtocol):
    """A UDP UAC for many calls at once: one socket, responses matched by Call-ID (and the
    CSeq of the INVITE in progress). With `password`, a 401 to an INVITE is answered once
    with digest credentials of user `USER`."""

    def __init__(
        self,
        target_port: int,
        *,
        dial: Callable[[int], str] = lambda index: "echo",
        password: str | None = None,
        telephone_event: bool = False,
    ) -> None:
        self.target = (HOST, target_port)
        self.dial = dial
        self.telephone_event = telephone_event
        self.digest = (
            None
            if password is None
            else DigestClient([DigestAccount(realm=REALM, username=USER, password=password)])
        )
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.calls: dict[str, SipCall] = {}
        self.strays = 0
        self.challenged = 0

    def uri(self, index: int) -> str:
        return f"sip:{self.dial(index)}@{HOST}:{self.target[1]}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(self.transport.get_extra_info("sockname")[1])

    def _send(self, text: str, addr: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), addr or self.target)

    def _common(self, call: SipCall, method: str, cseq: int, branch: str) -> str:
        to = f"<{call.uri}>" + (f";tag={call.to_tag}" if call.to_tag else "")
        return (
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{USER}@{HOST}>;tag={call.from_tag}\r\n"
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
            f"m=audio {call.rtp_port} RTP/AVP 0{' 101' if self.telephone_event else ''}\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            + (
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
                if self.telephone_event
                else ""
            )
            + "a=ptime:20\r\n"
            "a=sendrecv\r\n"
        )
        authorization = (
            f"Authorization: {call.authorization}\r\n" if call.authorization is not None else ""
        )
        return (
            f"INVITE {call.uri} SIP/2.0\r\n"
            + self._common(call, "INVITE", call.cseq, call.invite_branch)
            + f"Contact: <sip:{USER}@{HOST}:{self.port}>\r\n"
            + authorization
            + "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n" + sdp
        )

    def _ack_2xx(self, call: SipCall) -> str:
        # §13.2.2.4: the ACK of a 2xx is a new transaction to the remote target.
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (
            f"ACK {call.remote_target or call.uri} SIP/2.0\r\n"
            + self._common(call, "ACK", call.cseq, branch)
            + "Content-Length: 0\r\n\r\n"
        )

    def _ack_error(self, call: SipCall, message: SipMessage) -> str:
        # §17.1.1.3: the ACK of an error response is part of its INVITE's transaction: that
        # INVITE's branch, Request-URI and CSeq number, and the response's To (with its tag).
        branch = re.search(r";\s*branch=([^;,\s]+)", message.get("via"))
        return (
            f"ACK {call.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{self.port};"
            f"branch={branch.group(1) if branch else call.invite_branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{USER}@{HOST}>;tag={call.from_tag}\r\n"
            f"To: {message.get('to')}\r\n"
            f"Call-ID: {call.call_id}\r\n"
            f"CSeq: {message.cseq_number} ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        )

    def _bye(self, call: SipCall) -> str:
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (
            f"BYE {call.remote_target or call.uri} SIP/2.0\r\n"
            + self._common(call, "BYE", call.cseq + 1, branch)
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
            if message.cseq_number != call.cseq:
                # A retransmission for the INVITE a 401 ended: ACK it again, nothing else.
                if status >= 300:
                    self._send(self._ack_error(call, message))
                return
            if status < 200:
                call.provisional = True
                return
            if status < 300:
                to_tag = re.search(r";\s*tag=([^;>\s]+)", message.get("to"))
                call.to_tag = to_tag.group(1) if to_tag else None
                contact = re.search(r"<([^>]+)>", message.get("contact"))
                call.remote_target = contact.group(1) if contact else None
                sdp = message.body.decode(errors="replace")
                port = re.search(r"^m=audio (\d+)", sdp, re.M)
                conn = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
                if port and conn:
                    call.engine_rtp = (conn.group(1), int(port.group(1)))
                self._send(self._ack_2xx(call))  # again for every retransmitted 2xx
            else:
                if status == 401:
                    call.challenges = message.headers.get("www-authenticate", [])
                self._send(self._ack_error(call, message))
            if call.invite_final is not None and not call.invite_final.done():
                call.reason = message.start.split(" ", 2)[-1]
                call.invite_final.set_result(status)
        elif (
            method == "BYE"
            and status >= 200
            and call.bye_final is not None
            and not call.bye_final.done()
        ):
            call.reason = message.start.split(" ", 2)[-1]
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

    def _credentials(self, call: SipCall) -> str | None:
        """The Authorization for the call's 401 (a fresh cnonce; nc counted per nonce)."""
        assert self.digest is not None
        challenges: list[Challenge] = []
        for value in call.challenges:
            with contextlib.suppress(DigestParseError):
                parsed = parse_challenge(value)
                if isinstance(parsed, Challenge):
                    challenges.append(parsed)
        credentials = self.digest.answer(
            challenges, method="INVITE", uri=call.uri, host=HOST, cnonce=make_cnonce()
        )
        return None if credentials is None else credentials.to_header_value()

    async def invite(self, call: SipCall) -> bool:
        """INVITE (-> 401 -> INVITE with credentials) -> 200 (with SDP) -> ACK; False with
        `call.error` set otherwise."""
        call.uri = call.uri or self.uri(call.index)
        self.calls[call.call_id] = call
        loop = asyncio.get_running_loop()
        status: int | None = None
        for attempt in range(2):
            call.invite_final = loop.create_future()
            call.provisional = False
            status = await self._transact(
                self._invite(call), call.invite_final, INVITE_TIMEOUT, lambda: not call.provisional
            )
            if status != 401 or self.digest is None or attempt:
                break
            self.challenged += 1
            authorization = self._credentials(call)
            if authorization is None:
                call.error = "401 without a challenge we can answer"
                return False
            call.authorization = authorization
            call.cseq += 1
            call.invite_branch = "z9hG4bK" + secrets.token_hex(8)
            call.to_tag = None
        call.status = status or 0
        if status is None:
            call.error = "INVITE timed out"
        elif status != 200:
            call.error = f"INVITE answered {status} {call.reason}"
        elif call.engine_rtp is None:
            call.error = "200 without an SDP answer"
        return call.error is None

    async def bye(self, call: SipCall) -> bool:
        """BYE -> 200; False with `call.error` set otherwise."""
        call.bye_final = asyncio.get_running_loop().create_future()
        status = await self._transact(self._bye(call), call.bye_final, BYE_TIMEOUT, lambda: True)
        if status != 200:
            call.error = (
                "BYE timed out" if status is None else f"BYE answered {status} {call.reason}"
            )
        return call.error is None


# --- RTP generator and sink --------------------------------------------------------------------


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP socket: sends numbered PCMU frames, records the echoes' arrival."""

    def __init__(self, index: int, capacity: int) -> None:
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None
        """A send-only stream's socket (see `_open_stream`)."""
        self.port = 0
        self.remote: tuple[str, int] | None = None
        self.sent: list[float] = []
        self.capacity = capacity
        self.seen = bytearray(capacity)
        self.recv_n: list[int] = []
        self.recv_t: list[float] = []
        self.arrivals: list[float] | None = None
        """Set to a list to record every datagram's arrival (the probe's tick phase)."""
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
        if n >= self.capacity or self.remote is None:
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
        if self.transport is not None:
            self.transport.sendto(bytes(buf), self.remote)
        elif self.sock is not None:
            with contextlib.suppress(BlockingIOError):
                self.sock.sendto(buf, self.remote)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = time.monotonic()
        if self.arrivals is not None:
            self.arrivals.append(now)
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

    def round_trips(self, since: float = -math.inf) -> tuple[FloatArray, FloatArray]:
        """(send times, round trips) of the packets sent at or after `since` that came back."""
        if not self.recv_n:
            return np.zeros(0), np.zeros(0)
        sent = np.asarray(self.sent)[np.asarray(self.recv_n)]
        keep = sent >= since
        return sent[keep], (np.asarray(self.recv_t) - sent)[keep]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.sock is not None:
            self.sock.close()


class Generator:
    """One timer for every stream: the streams are dealt into `slots` groups evenly spaced
    over the 20 ms; each group sends one packet per stream on the absolute schedule
    `first + (k + group / slots) * 20 ms`. A slot later than one interval skips the missed
    slots (the streams send nothing for those)."""

    def __init__(self, streams: Sequence[RtpStream], first: float, *, slots: int = 1) -> None:
        self.groups = [list(streams[j::slots]) for j in range(slots)]
        self.step = FRAME / slots
        self.first = first
        self.m = 0
        self.late_ticks = 0
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        due = self.first + self.m * self.step
        delay = due - time.monotonic()
        self.handle = asyncio.get_running_loop().call_later(max(0.0, delay), self._tick)

    def _tick(self) -> None:
        lateness = time.monotonic() - (self.first + self.m * self.step)
        if lateness > FRAME:
            self.late_ticks += 1
            self.m += int(lateness / self.step)
        mono = time.monotonic
        for stream in self.groups[self.m % len(self.groups)]:
            stream.send(mono())
        self.m += 1
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


def mid_tick(phase: float, lead: float = 0.1) -> float:
    """The first send time, at least `lead` s from now, half a tick after an engine tick."""
    at = time.monotonic() + lead
    return at + ((phase + FRAME / 2 - at) % FRAME)


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
    reference_ms: float | None = None
    """The inherent delay subtracted from the round trip (its mean over the packets)."""
    bypass_p50_ms: float | None = None
    bypass_p99_ms: float | None = None
    """Bridged: the round trip of a stream sent straight to SIPp's echo during the load: what
    the load side (driver, SIPp, CPU 1) alone adds under this load."""
    engine_cpu_pct: float = 0.0
    engine_sys_pct: float = 0.0
    """The kernel's part of engine_cpu_pct (system calls: the sockets' sends and receives)."""
    rss_mb: float = 0.0
    driver_cpu_pct: float = 0.0
    sipp_cpu_pct: float | None = None
    load_cpu_pct: float | None = None
    """The driver's and SIPp's CPU (% of one core; both on CPU 1 when pinned)."""
    cpu1_busy_pct: float | None = None
    """How busy CPU 1 was (/proc/stat: softirq and other processes included)."""
    background_cpu_pct: float | None = None
    """CPU 0 + CPU 1 busy (% of one core) just before the row, with the engine idle."""
    cpu0_busy_pct: float | None = None
    """How busy CPU 0 was: the engine, the kernel's softirq work for the datagrams it sends,
    and anything else that ran there (other processes disturb the engine's figures)."""
    udp_drops: dict[str, int] = field(default_factory=dict)
    calls_per_s: float | None = None
    seconds: float = 0.0
    machine: str = ""
    loop: str = ""
    offer: str = "PCMU"
    """What the driver's SDP offers (with telephone-event, no in-band DTMF detection)."""
    revision: str = ""
    """The commit the engine ran from, "+dirty" when callcenter/ had uncommitted changes."""
    notes: list[str] = field(default_factory=list)


Reference = Callable[[FloatArray], FloatArray]
"""Send times -> the inherent round trip of each packet (s)."""


@dataclass
class Load:
    """The processes being measured and where they run."""

    engine: Engine
    sipp: Sipp | None = None
    pinned: bool = False
    """The engine on CPU 0, the driver and SIPp on CPU 1."""

    def check_alive(self) -> None:
        self.engine.check_alive()
        if self.sipp is not None:
            self.sipp.check_alive()


@dataclass
class _Meter:
    """CPU of the engine, the driver, SIPp and the load CPU over a window."""

    load: Load
    start: tuple[float, ...] = ()

    def _read(self) -> tuple[float, ...]:
        sipp = self.load.sipp
        return (
            time.monotonic(),
            *_cpu_times(self.load.engine.pid),
            time.process_time(),
            _cpu_seconds(sipp.pid) if sipp is not None else 0.0,
            *_cpu_busy(0),
            *_cpu_busy(1),
        )

    def begin(self) -> None:
        self.start = self._read()

    def end(self, result: Result) -> None:
        t1, u1, k1, d1, s1, b1, j1, c1, i1 = self._read()
        t0, u0, k0, d0, s0, b0, j0, c0, i0 = self.start
        elapsed = t1 - t0
        result.engine_cpu_pct = 100 * (u1 - u0 + k1 - k0) / elapsed
        result.engine_sys_pct = 100 * (k1 - k0) / elapsed
        result.driver_cpu_pct = 100 * (d1 - d0) / elapsed
        result.rss_mb = _rss_mb(self.load.engine.pid)
        if self.load.sipp is not None:
            result.sipp_cpu_pct = 100 * (s1 - s0) / elapsed
        if self.load.pinned and j1 > j0 and i1 > i0:
            result.cpu0_busy_pct = 100 * (b1 - b0) / (j1 - j0)
            result.cpu1_busy_pct = 100 * (c1 - c0) / (i1 - i0)
        result.load_cpu_pct = result.driver_cpu_pct + (result.sipp_cpu_pct or 0.0)


async def _open_stream(index: int, capacity: int, *, measured: bool = True) -> RtpStream:
    """A call's RTP socket. A measured one reads what comes back; an unmeasured one only
    sends: nobody reads its socket (a tiny receive buffer), so the kernel drops what the
    engine sends it, after the engine did all its work, and the driver spends nothing on it.
    The load on the engine is the same; the driver's CPU goes to sending."""
    stream = RtpStream(index, capacity)
    if measured:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: stream, local_addr=(HOST, 0))
        return stream
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
    sock.bind((HOST, 0))
    sock.setblocking(False)
    stream.sock = sock
    stream.port = int(sock.getsockname()[1])
    return stream


def _measured(index: int, n: int, measure: int, slots: int) -> bool:
    """Whether call `index` of `n` is one of the ~`measure` whose echoes we read: every
    k-th of each send slot, so that every slot has some."""
    if n <= measure:
        return True
    k = math.ceil(n / measure)
    return (index // slots) % k == 0


async def _bounded(works: Sequence[Coroutine[Any, Any, T]], limit: int) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def one(work: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await work

    return await asyncio.gather(*(one(w) for w in works))


async def _stream_for(stream: RtpStream, seconds: float, first: float) -> None:
    generator = Generator([stream], first)
    generator.start()
    try:
        await asyncio.sleep(first + seconds - time.monotonic())
    finally:
        generator.stop()
    await asyncio.sleep(DRAIN)


async def probe_phase(uac: SipUac) -> float:
    """One call on the idle engine: the echo sends a packet every tick (silence when it has
    nothing), so its arrival times give the media clock's phase."""
    stream = await _open_stream(0, 1)
    stream.arrivals = []
    call = SipCall(index=0, rtp_port=stream.port)
    try:
        if not await uac.invite(call):
            raise BenchError(f"the probe call failed: {call.error}")
        await asyncio.sleep(1.5)
        if not await uac.bye(call):
            raise BenchError(f"the probe call's BYE failed: {call.error}")
    finally:
        stream.close()
        uac.calls.pop(call.call_id, None)
    return tick_phase(stream.arrivals[10:])  # skip the first ticks (the leg was being set up)


@dataclass
class BridgeProbe:
    """The bridged path's inherent delay on the idle engine (see the module docstring)."""

    bypass_ms: float
    """Driver -> SIPp echo -> driver, no engine (p50)."""
    probe_rtt_ms: float
    """One bridged call on the idle engine (p50)."""
    forwarded: bool
    phase: float | None = None
    constant: float = 0.0
    """Seconds: the whole reference when forwarded; C (after the tick wait) when mixed."""

    def inherent(self, sent: FloatArray) -> FloatArray:
        if self.phase is None:
            return np.full_like(sent, self.constant)
        return ((self.phase - sent) % FRAME) + self.constant

    @property
    def description(self) -> str:
        if self.forwarded:
            return (
                f"the room forwards (idle bridged RTT p50 {self.probe_rtt_ms:.2f} ms, "
                f"SIPp bypass {self.bypass_ms:.2f} ms): reference = bypass"
            )
        return (
            f"the room mixes on ticks (idle bridged RTT p50 {self.probe_rtt_ms:.1f} ms, "
            f"bypass {self.bypass_ms:.2f} ms): reference = wait for the next tick + "
            f"{self.constant * 1e3:.1f} ms"
        )


async def probe_bridge(uac: SipUac, sipp: Sipp) -> BridgeProbe:
    seconds = 2.0
    capacity = int((seconds + 1) / FRAME)
    # Bypass: the same stream straight to SIPp's echo port.
    bypass = await _open_stream(0, capacity)
    bypass.remote = (HOST, sipp.media_port)
    try:
        first = time.monotonic() + 0.05
        await _stream_for(bypass, 1.0, first)
        _, bypass_rtt = bypass.round_trips(first + 0.2)
    finally:
        bypass.close()
    if not len(bypass_rtt):
        raise BenchError(f"nothing came back from SIPp's echo port {sipp.media_port}")
    stream = await _open_stream(0, capacity)
    stream.arrivals = []
    call = SipCall(index=0, rtp_port=stream.port)
    try:
        if not await uac.invite(call):
            raise BenchError(f"the bridged probe call failed: {call.error}")
        stream.remote = call.engine_rtp
        first = time.monotonic() + 0.05
        await _stream_for(stream, seconds, first)
        if not await uac.bye(call):
            raise BenchError(f"the bridged probe call's BYE failed: {call.error}")
    finally:
        stream.close()
        uac.calls.pop(call.call_id, None)
    sent, rtt = stream.round_trips(first + WARMUP)
    if not len(rtt):
        raise BenchError("no packet came back through the bridge (probe call)")
    probe = BridgeProbe(
        bypass_ms=float(np.median(bypass_rtt)) * 1e3,
        probe_rtt_ms=float(np.median(rtt)) * 1e3,
        forwarded=float(np.median(rtt)) < FRAME / 2,
    )
    if probe.forwarded:
        probe.constant = probe.bypass_ms / 1e3
    else:
        probe.phase = tick_phase([t for t in stream.arrivals if t >= first + WARMUP])
        probe.constant = float(np.median(rtt - ((probe.phase - sent) % FRAME)))
    return probe


async def media_load(
    scenario: str,
    uac: SipUac,
    load: Load,
    n: int,
    seconds: float,
    *,
    reference: Reference,
    phase: float | None,
    slots: int = 1,
    measure: int,
) -> Result:
    """N calls, each streaming for `seconds` (after the warm-up); `phase` None spreads the
    sends over `slots` groups, else one burst per tick half a tick after the engine's ticks.
    Loss and latency come from ~`measure` of the calls (see `_open_stream`)."""
    capacity = int((WARMUP + seconds + 2 * DRAIN + 5) / FRAME)
    streams = [
        await _open_stream(i, capacity, measured=_measured(i, n, measure, slots)) for i in range(n)
    ]
    measured = [s for s in streams if s.transport is not None]
    calls = [SipCall(index=i, rtp_port=s.port) for i, s in enumerate(streams)]
    background = await _background_busy() if load.pinned else None
    bypass: RtpStream | None = None
    if load.sipp is not None:
        bypass = await _open_stream(n, capacity)
        bypass.remote = (HOST, load.sipp.media_port)
    result = Result(scenario, n, 0, seconds=seconds)
    if background is not None:
        _note_background(result, background)
    generator: Generator | None = None
    meter = _Meter(load)
    challenged0 = uac.challenged
    try:
        t_setup = time.monotonic()
        answered = await _bounded([uac.invite(c) for c in calls], SIGNALLING_CONCURRENCY)
        setup_s = time.monotonic() - t_setup
        live = [s for s, c, ok in zip(streams, calls, answered, strict=True) if ok]
        if bypass is not None:
            live.append(bypass)
        for stream, call in zip(streams, calls, strict=True):
            stream.remote = call.engine_rtp
        if phase is None:
            first = time.monotonic() + 0.1
            generator = Generator(live, first, slots=slots)
        else:
            first = mid_tick(phase)  # no packet straddles a tick
            generator = Generator(live, first)
        generator.start()
        window_start = first + WARMUP
        window_end = window_start + seconds
        # Socket drops over the window: read in a thread (~ms for thousands of sockets).
        await asyncio.sleep(window_start - 0.1 - time.monotonic())
        drops0 = await asyncio.to_thread(_udp_drops)
        await asyncio.sleep(window_start - time.monotonic())
        meter.begin()
        await asyncio.sleep(window_end - time.monotonic())
        meter.end(result)
        drops = await asyncio.to_thread(_udp_drops)
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
        if bypass is not None:
            bypass.close()
        for call in calls:
            uac.calls.pop(call.call_id, None)
    if bypass is not None:
        sent, rtt = bypass.round_trips(window_start)
        rtt = rtt[sent <= window_end] * 1e3
        if len(rtt):
            result.bypass_p50_ms = float(np.percentile(rtt, 50))
            result.bypass_p99_ms = float(np.percentile(rtt, 99))
    result.udp_drops = _attribute_drops(drops0, drops, load, {s.port for s in measured})
    failed = [c for c in calls if c.error is not None or c.ended_by_engine]
    result.failed_calls = len(failed)
    _note_failures(result, failed)
    rate = n / setup_s if setup_s > 0 else math.inf
    result.notes.append(f"set up in {setup_s:.2f} s ({rate:.0f} calls/s)")
    if uac.digest is not None:
        result.notes.append(f"{uac.challenged - challenged0} INVITEs challenged (401)")

    # Loss and latency over the packets sent inside the window.
    expected = received = 0
    rtts: list[FloatArray] = []
    added: list[FloatArray] = []
    references: list[FloatArray] = []
    crossed = 0
    if len(measured) < n:
        result.notes.append(f"loss and latency of {len(measured)} of the {n} calls")
    for stream in measured:
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
        inherent = reference(s)
        rtts.append(rtt)
        added.append(rtt - inherent)
        references.append(inherent)
    if crossed:
        result.notes.append(f"{crossed} packets came back on the wrong call")
    if result.bypass_p50_ms is not None and result.bypass_p99_ms is not None:
        result.notes.append(
            f"SIPp bypass under this load: RTT p50 {result.bypass_p50_ms:.2f} / p99 "
            f"{result.bypass_p99_ms:.2f} ms (the load side's own share)"
        )
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
        result.reference_ms = float(np.mean(np.concatenate(references))) * 1e3
        if phase is not None:
            extra = float(np.mean(all_added > FRAME * 1e3 * 0.75)) * 100
            if extra:
                result.notes.append(
                    f"{extra:.2f} % of frames delayed by extra jitter-buffer frames"
                )
    _note_load(result)
    return result


def _attribute_drops(
    before: dict[int, int], after: dict[int, int], load: Load, ours: set[int]
) -> dict[str, int]:
    """Receive-buffer drops during a run, by owner of the socket (the counters of sockets
    opened during the run start at 0)."""
    owners = {"engine": 0, "sipp": 0, "driver": 0}
    sipp_ports = set()
    if load.sipp is not None:
        sipp_ports = {load.sipp.media_port, load.sipp.sip_port}
    for port, count in after.items():
        delta = count - before.get(port, 0)
        if delta <= 0:
            continue
        if port in sipp_ports:
            owners["sipp"] += delta
        elif load.engine.owns_port(port) or port == load.engine.sip_port:
            owners["engine"] += delta
        elif port in ours:
            owners["driver"] += delta
    return owners


def _note_failures(result: Result, failed: Sequence[SipCall]) -> None:
    errors: dict[str, int] = {}
    for call in failed:
        key = call.error or "hung up by the engine"
        errors[key] = errors.get(key, 0) + 1
    if errors:
        worst = sorted(errors.items(), key=lambda item: -item[1])[:3]
        result.notes.append("failures: " + "; ".join(f"{e} (x{k})" for e, k in worst))
    if any(c.status == 503 for c in failed):
        result.notes.append(
            "503s: the engine refused (no media ports, or its transaction bound was reached)"
        )


def _note_load(result: Result) -> None:
    if any(result.udp_drops.values()):
        result.notes.append(
            "UDP receive-buffer drops: "
            + ", ".join(f"{k} {v}" for k, v in result.udp_drops.items() if v)
        )
    if result.cpu0_busy_pct is not None and result.cpu0_busy_pct > result.engine_cpu_pct + 25:
        result.notes.append(
            f"CPU 0 {result.cpu0_busy_pct:.0f} % busy, the engine {result.engine_cpu_pct:.0f} %: "
            "softirq for its datagrams, or other processes disturbing it"
        )
    busiest = max(result.load_cpu_pct or 0.0, result.cpu1_busy_pct or 0.0)
    if busiest >= LOAD_SATURATED_PCT:
        result.notes.append(
            f"CPU 1 (driver + SIPp) {busiest:.0f} % busy: the load generator may be what "
            "limits this row, not the engine"
        )


class _Sink(asyncio.DatagramProtocol):
    """Where the setup scenario's calls point their media: counts and discards."""

    def __init__(self) -> None:
        self.packets = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets += 1


async def call_setup(
    scenario: str, uac: SipUac, load: Load, total: int, concurrency: int
) -> Result:
    loop = asyncio.get_running_loop()
    sink = _Sink()
    await loop.create_datagram_endpoint(lambda: sink, local_addr=(HOST, 0))
    assert sink.transport is not None
    sink_port = int(sink.transport.get_extra_info("sockname")[1])
    calls = [SipCall(index=i, rtp_port=sink_port) for i in range(total)]
    meter = _Meter(load)
    challenged0 = uac.challenged
    background = await _background_busy() if load.pinned else None

    async def one(call: SipCall) -> bool:
        return await uac.invite(call) and await uac.bye(call)

    try:
        meter.begin()
        t0 = time.monotonic()
        outcomes = await _bounded([one(c) for c in calls], concurrency)
        t1 = time.monotonic()
        result = Result(scenario, total, 0, calls_per_s=total / (t1 - t0), seconds=t1 - t0)
        meter.end(result)
    finally:
        sink.transport.close()
        for call in calls:
            uac.calls.pop(call.call_id, None)
    failed = [c for c, ok in zip(calls, outcomes, strict=True) if not ok or c.ended_by_engine]
    result.failed_calls = len(failed)
    if background is not None:
        _note_background(result, background)
    steps = "INVITE-401-INVITE-200-ACK-BYE-200" if uac.digest else "INVITE-200-ACK-BYE-200"
    result.notes.append(f"{concurrency} in flight; {steps} each")
    if uac.digest is not None and uac.challenged - challenged0 != total:
        result.notes.append(f"{uac.challenged - challenged0} of {total} INVITEs challenged")
    _note_failures(result, failed)
    _note_load(result)
    return result


def _stop_here(result: Result, n: int, last_good: int | None, *, loss_limit: bool) -> bool:
    reasons = []
    if result.failed_calls > MAX_FAILED_FRACTION * n:
        reasons.append(f"over {MAX_FAILED_FRACTION:.0%} failed")
    if loss_limit and result.loss_pct is not None and result.loss_pct >= MAX_LOSS_PCT:
        reasons.append(f"loss >= {MAX_LOSS_PCT:g} %")
    if not reasons:
        return False
    result.notes.append(
        " and ".join(reasons)
        + ": escalation stopped"
        + (f"; the N before: {last_good}" if last_good else "")
    )
    return True


async def run_echo(load: Load, args: argparse.Namespace) -> list[Result]:
    engine = load.engine
    loop = asyncio.get_running_loop()
    uac = SipUac(engine.sip_port, telephone_event=args.telephone_event)
    transport, _ = await loop.create_datagram_endpoint(lambda: uac, local_addr=(HOST, 0))
    results: list[Result] = []
    depth = jitter_depth_frames()
    try:
        phase = await asyncio.wait_for(probe_phase(uac), 30)

        def echo_reference(sent: FloatArray) -> FloatArray:
            return ((phase - sent) % FRAME) + depth * FRAME

        last_good: int | None = None
        for n in args.calls:
            load.check_alive()
            print(f"-- echo_concurrent: {n} calls for {args.seconds:g} s", file=sys.stderr)
            budget = args.seconds + 60 + n * 0.2
            result = await asyncio.wait_for(
                media_load(
                    "echo_concurrent",
                    uac,
                    load,
                    n,
                    args.seconds,
                    reference=echo_reference,
                    phase=phase,
                    measure=args.measure,
                ),
                budget,
            )
            results.append(result)
            await asyncio.sleep(1.0)  # let the engine close the legs before the next N
            if _stop_here(result, n, last_good, loss_limit=False):
                break
            last_good = n
        load.check_alive()
        print(
            f"-- call_setup: {args.setup_calls} calls, {args.setup_concurrency} in flight",
            file=sys.stderr,
        )
        results.append(
            await asyncio.wait_for(
                call_setup("call_setup", uac, load, args.setup_calls, args.setup_concurrency),
                60 + args.setup_calls * 0.5,
            )
        )
        load.check_alive()
    finally:
        transport.close()
    return results


async def run_bridged(load: Load, args: argparse.Namespace, password: str) -> list[Result]:
    engine, sipp = load.engine, load.sipp
    assert sipp is not None
    loop = asyncio.get_running_loop()
    uac = SipUac(
        engine.sip_port,
        dial=lambda index: f"+1555{index:07d}",
        password=password,
        telephone_event=args.telephone_event,
    )
    transport, _ = await loop.create_datagram_endpoint(lambda: uac, local_addr=(HOST, 0))
    results: list[Result] = []
    try:
        probe = await asyncio.wait_for(probe_bridge(uac, sipp), 30)
        print(f"-- bridged probe: {probe.description}", file=sys.stderr)
        if args.bridged_setup_calls:
            # First, on the fresh engine: its transactions are gone before the big Ns.
            print(
                f"-- bridged_setup: {args.bridged_setup_calls} calls, "
                f"{args.bridged_setup_concurrency} in flight",
                file=sys.stderr,
            )
            setup = await asyncio.wait_for(
                call_setup(
                    "bridged_setup",
                    uac,
                    load,
                    args.bridged_setup_calls,
                    args.bridged_setup_concurrency,
                ),
                60 + args.bridged_setup_calls * 0.5,
            )
            results.append(setup)
            await asyncio.sleep(1.0)
        last_good: int | None = None
        for n in args.bridged:
            load.check_alive()
            print(f"-- bridged: {n} calls for {args.bridged_seconds:g} s", file=sys.stderr)
            budget = args.bridged_seconds + 60 + n * 0.3
            result = await asyncio.wait_for(
                media_load(
                    "bridged",
                    uac,
                    load,
                    n,
                    args.bridged_seconds,
                    reference=probe.inherent,
                    phase=probe.phase,
                    slots=SPREAD_SLOTS,
                    measure=args.measure,
                ),
                budget,
            )
            result.notes.insert(0, probe.description)
            results.append(result)
            await asyncio.sleep(1.0)
            if _stop_here(result, n, last_good, loss_limit=True):
                break
            last_good = n
        load.check_alive()
    finally:
        transport.close()
    return results


# --- driver ------------------------------------------------------------------------------------


def machine_description(pinned: bool) -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pinning = "engine on CPU 0, load (driver, SIPp) on CPU 1" if pinned else "not pinned"
    return (
        f"{platform.system()} {platform.machine()}, {model or 'cpu ?'}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}; {pinning}"
    )


def revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "callcenter"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head + ("+dirty" if dirty else "")


def rtp_range(max_legs: int) -> tuple[int, int]:
    """A random even-aligned port range below the ephemeral range, sized for the most legs
    at once plus the probe and setup calls (the pool skips ports others hold)."""
    size = 2 * (max_legs + 300)
    base = 21000 + 2 * secrets.randbelow((32000 - 21000 - size) // 2)
    return base, base + size - 1


TARGET_ADDED_P99_MS = 5.0
TARGET_SETUP_RATE = 100.0


def verdicts(results: Sequence[Result]) -> list[str]:
    """The issue's targets, per scenario: the largest N at 0 loss, no failed call and added
    p99 < 5 ms; setup at >= 100 calls/s with no failed call."""
    lines = []
    for scenario in ("echo_concurrent", "bridged"):
        rows = [r for r in results if r.scenario == scenario]
        if not rows:
            continue
        good = [
            r.calls
            for r in rows
            if r.failed_calls == 0
            and r.loss_pct == 0
            and r.added_latency_p99_ms is not None
            and r.added_latency_p99_ms < TARGET_ADDED_P99_MS
        ]
        lines.append(
            f"{scenario}: largest N at 0 loss, 0 failed, added p99 < {TARGET_ADDED_P99_MS:g} ms: "
            + (str(max(good)) if good else "none")
            + f" (of {', '.join(str(r.calls) for r in rows)})"
        )
    for r in results:
        if r.scenario in ("call_setup", "bridged_setup") and r.calls_per_s is not None:
            met = r.failed_calls == 0 and r.calls_per_s >= TARGET_SETUP_RATE
            lines.append(
                f"{r.scenario}: {r.calls_per_s:.0f} calls/s, {r.failed_calls} failed: target "
                f">= {TARGET_SETUP_RATE:g}/s with 0 failures {'met' if met else 'NOT met'}"
            )
    return lines


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: Sequence[Result]) -> str:
    head = (
        "| scenario | calls | held | failed | loss % | RTT p50 / p99 ms | added p50 / p99 ms "
        "| engine CPU % | RSS MB | calls/s | load CPU % |"
    )
    rows = [head, "|" + "---|" * 11]
    for r in results:
        rows.append(
            f"| {r.scenario} | {r.calls} | {'–' if r.calls_held is None else r.calls_held} "
            f"| {r.failed_calls} | {_fmt(r.loss_pct, 3)} "
            f"| {_fmt(r.round_trip_p50_ms, 2)} / {_fmt(r.round_trip_p99_ms, 2)} "
            f"| {_fmt(r.added_latency_p50_ms, 2)} / {_fmt(r.added_latency_p99_ms, 2)} "
            f"| {r.engine_cpu_pct:.1f} | {r.rss_mb:.1f} | {_fmt(r.calls_per_s)} "
            f"| {_fmt(r.load_cpu_pct, 0)} |"
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


def _counts(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


QUICK = {
    "calls": [50],
    "seconds": 3.0,
    "setup_calls": 100,
    "bridged": [100, 500],
    "bridged_seconds": 3.0,
    "bridged_setup_calls": 200,
}
"""--quick: a smoke run of every scenario in well under a minute."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.bench_calls", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenarios",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=["echo", "bridged"],
        help="which engines to run, comma-separated: echo, bridged (default both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs (overridden by explicit flags)"
    )
    parser.add_argument(
        "--calls",
        type=_counts,
        help="echo: concurrent call counts, comma-separated (default 50,100,200)",
    )
    parser.add_argument("--seconds", type=float, help="echo: measuring window per N (20)")
    parser.add_argument("--setup-calls", type=int, help="echo: call_setup calls (200)")
    parser.add_argument("--setup-concurrency", type=int, default=20)
    parser.add_argument(
        "--bridged",
        type=_counts,
        help="bridged: concurrent call counts, escalated (default 100,250,500,750,1000)",
    )
    parser.add_argument("--bridged-seconds", type=float, help="bridged: window per N (10)")
    parser.add_argument(
        "--bridged-setup-calls", type=int, help="bridged_setup calls, 0 to skip (1000)"
    )
    parser.add_argument("--bridged-setup-concurrency", type=int, default=50)
    parser.add_argument(
        "--measure",
        type=int,
        default=200,
        help="read the echoes of at most this many calls per N (the rest only send; the "
        "engine's load is the same) so that the driver is not the bottleneck (default 200)",
    )
    parser.add_argument(
        "--telephone-event",
        action="store_true",
        help="offer RFC 4733 telephone-event besides PCMU, as most phones do (default: PCMU "
        "only, as SIPp's scenarios: the engine then listens for in-band DTMF on every leg)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--log-dir", type=Path, help="keep the engine and SIPp logs here (default: discarded)"
    )
    parser.add_argument(
        "--engine-profile",
        type=Path,
        help="run the engine under cProfile, write the stats here and print the top functions "
        "(CPU figures are then inflated by the profiler; with both scenarios, the last wins)",
    )
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = {
        "calls": [50, 100, 200],
        "seconds": 20.0,
        "setup_calls": 200,
        "bridged": [100, 250, 500, 750, 1000],
        "bridged_seconds": 10.0,
        "bridged_setup_calls": 1000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else value)
    if unknown := set(args.scenarios) - {"echo", "bridged"}:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.calls or min(args.calls) < 1 or args.seconds <= 0:
        parser.error("--calls needs positive counts and --seconds a positive duration")
    if not args.bridged or min(args.bridged) < 1 or args.bridged_seconds <= 0:
        parser.error("--bridged needs positive counts and --bridged-seconds a positive duration")
    return args


def _keep_logs(log_dir: Path | None, name: str, *paths: Path) -> None:
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        with contextlib.suppress(OSError):
            shutil.copy(path, log_dir / f"{name}-{path.name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    engine_revision = revision()  # what the engines are about to run
    pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if pinned:
        os.sched_setaffinity(0, {1})  # the load generator (this process) on CPU 1
        # SIPp's echo (same CPU) has one socket of the default size for every call (SIPp
        # ignores -rtp_buffsize there): let it preempt us as soon as datagrams arrive.
        os.nice(5)
    else:
        print("warning: fewer than 2 CPUs or no taskset: nothing is pinned", file=sys.stderr)
    machine = machine_description(pinned)
    profile = args.engine_profile.resolve() if args.engine_profile else None
    results: list[Result] = []
    problems: dict[str, list[str]] = {}
    loops: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
        if "echo" in args.scenarios:
            engine = Engine(
                Path(tmp) / "echo",
                rtp_range(max(args.calls)),
                0 if pinned else None,
                trunks=[LOOPBACK_TRUNK],
                profile=profile,
            )
            load = Load(engine, None, pinned)
            try:
                engine.start()
                print(
                    f"-- echo engine pid {engine.pid} ({engine.loop}) on SIP port "
                    f"{engine.sip_port}",
                    file=sys.stderr,
                )
                results += run_driver(run_echo(load, args))
            except BenchError as exc:
                print(f"bench_calls: {exc}", file=sys.stderr)
                return 1
            finally:
                engine.stop()
                _keep_logs(args.log_dir, "echo", engine.log_path)
            problems["echo"] = engine.problems()
            loops.add(engine.loop)
        if "bridged" in args.scenarios:
            password = secrets.token_hex(12)  # never starts with "-" (argparse)
            sipp = Sipp(Path(tmp) / "sipp", 1 if pinned else None)
            # Two legs per call; bridged_setup's short calls never overlap by much.
            legs = 2 * max(max(args.bridged), args.bridged_setup_concurrency)
            engine = Engine(
                Path(tmp) / "bridged",
                rtp_range(legs),
                0 if pinned else None,
                users={USER: password},
                profile=profile,
            )
            load = Load(engine, sipp, pinned)
            try:
                sipp.start()
                engine.trunks = [
                    {
                        "name": "carrier",
                        "peers": CARRIER_PEERS,
                        "outbound": f"{HOST}:{sipp.sip_port}",
                    }
                ]
                engine.start()
                print(
                    f"-- bridged engine pid {engine.pid} ({engine.loop}) on SIP port "
                    f"{engine.sip_port}; SIPp pid {sipp.pid} on {sipp.sip_port}, echo port "
                    f"{sipp.media_port}",
                    file=sys.stderr,
                )
                results += run_driver(run_bridged(load, args, password))
            except BenchError as exc:
                print(f"bench_calls: {exc}", file=sys.stderr)
                return 1
            finally:
                engine.stop()
                sipp.stop()
                _keep_logs(
                    args.log_dir,
                    "bridged",
                    engine.log_path,
                    sipp.log_path,
                    sipp.workdir / "sipp-errors.log",
                )
            problems["bridged"] = engine.problems()
            loops.add(engine.loop)
    for result in results:
        result.machine = machine
        result.loop = "/".join(sorted(loops))
        result.revision = engine_revision
        result.offer = "PCMU+telephone-event" if args.telephone_event else "PCMU (no RFC 4733)"
    args.json.write_text(
        json.dumps([vars(r) for r in results], indent=2, ensure_ascii=False) + "\n"
    )
    print(table(results))
    print()
    for line in verdicts(results):
        print(line)
    print()
    for r in results:
        if r.notes:
            print(f"- {r.scenario} {r.calls}: {'; '.join(r.notes)}")
    depth = jitter_depth_frames()
    offer = "PCMU+telephone-event" if args.telephone_event else "PCMU"
    print(
        f"\necho: RTT = send -> echo back; it contains the echo's inherent delay: the wait for "
        f"the next 20 ms media tick (~10 ms: we send mid-tick) + the jitter buffer's {depth} "
        f"frame(s) ({depth * 20} ms). bridged: RTT = driver -> engine -> SIPp echo -> engine -> "
        "driver; its reference is measured by a probe (see the bridged notes). added = RTT "
        f"minus the reference. load CPU = CPU 1 (driver + SIPp). SDP offer: {offer}. Engine: "
        f"{'/'.join(sorted(loops))}, {machine}. Results in {args.json}; "
        f"{time.monotonic() - started:.0f} s in all."
    )
    for name, lines in problems.items():
        if lines:
            print(f"{name} engine log: {len(lines)} warning/error lines, first: {lines[0]}")
    if args.engine_profile:
        import pstats

        pstats.Stats(str(args.engine_profile)).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
