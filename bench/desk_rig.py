"""The rig behind bench/bench_browser_agents.py: the service in a process of its own, and lean
agent pages and SIP callers in load-generator processes.

Server side. `ServerRig` writes a data directory (an IVR flow whose first node is the queue
`bench`, `queues.yaml` with the bench agents, wrap-up 0), and starts
`python -m bench.desk_rig serve` in it: migrate, seed (agents with a web password; one
customer per caller number, so every call has a screen pop to load), then exactly the
services `callcenter serve` runs (`callcenter.cli.build_services`: SIP + media, call log,
voicemail, IVR, ACD, agent desk, web app; uvloop via `run_async`; gc frozen after start, as
`serve` does), configured by the same CALLCENTER_* settings, plus one thing `serve` lacks: a
control socket on loopback that answers `stats` with the media clock's counters
(`MediaClock.ticks/late_ticks/max_lateness/skipped_slots`), every bench agent's `BrowserLeg`
counters (reached through the desk's `phones`), the garbage collector's counts, and what a
`StallProbe` saw (gaps between ticks, GC pauses). Only the service runs in that process, so
its CPU (from /proc/<pid>/stat) is the server's alone.

The web passwords are argon2id with the product's parameters (one hash made by
`AccountService.set_password`, copied to the other agents: hashing 200 passwords would take
~35 CPU-seconds here). Logging in is real (`POST /api/auth/login`: one argon2 verify, ~0.18
CPU-s each), and each page logs in from its own loopback address (127.1.x.y): the service
allows 10 logins per client address a minute, and a call center's agents do not share one.

Load side. A generator process (`worker_main`, one or more) holds the pages and callers:

- `LeanPage`: one agent page. HTTP through `tests/web/page_client.py`'s `PageClient` (log in,
  go available, answer), and the page's WebSocket as a small RFC 6455 client of its own on an
  asyncio Protocol: the same handshake (session cookie, the page's Origin), the documented
  events (text frames: hello, call.offered, call.answered, call.ended, …; pings answered), and
  20 ms audio frames both ways (docs/agent-api.md: kind 1, codec 0, a uint32 sequence number,
  160 µ-law bytes; client frames masked with the connection's key). `PageClient`'s own socket
  (websockets' client, a task per page that sleeps between frames and a numpy encode per
  frame) would spend the generator's CPU on the generator: with one CPU for the load, the
  generator must stay well below the service's cost per page.
  The page counts what it receives: frames, gaps in the server's sequence numbers, and the
  inter-arrival time of every frame (time.perf_counter in the data callback).
- `BenchCaller`: a trunk caller, `tests.engine.test_bridge.Caller` for SIP (INVITE with SDP,
  200, ACK, BYE; its Call-ID made unique per call) with a lean RTP socket of its own (`LeanRtp`:
  PCMU every 20 ms, counts what comes back and the gaps in its sequence numbers).
- One timer per generator on an absolute 20 ms schedule, in SLOTS phases spread over the 20 ms
  (independent pages and phones do not all send at the same instant), sends every talking
  page's frame and every caller's packet of its phase: no task or timer per stream.

The orchestrator (bench_browser_agents.py) drives the generators over pipes: login, open
(sockets + available), call, wait_up, begin, end, hangup, quit.
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import math
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"
FRAME = 0.020
SLOTS = 10
STALL = 0.030
"""A process not running its timers (or the media clock's tick) for this long has stalled."""
"""Phases of the generators' 20 ms: stream i sends at (i mod SLOTS) x 2 ms into each frame."""
QUEUE = "bench"
TRUNK_NUMBER = "5100"
PASSWORD = "bench-web-password"
SCREEN_POP_AGENT = "popper"
POP_NUMBER = "+441632960999"
"""The screen-pop caller: a known customer (gold tier), matched on every call."""
MAX_CALLERS = 999
"""Caller numbers are +441632960000.. +441632960998 (Ofcom's drama range, valid for GB)."""
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0
LEG_COUNTERS = (
    "frames_in",
    "played",
    "concealed",
    "lost",
    "late",
    "duplicates",
    "malformed",
    "dropped",
    "resets",
    "frames_out",
    "frames_unsent",
    "send_errors",
)

T = TypeVar("T")

FLOW = f"""\
start: q
nodes:
  q:
    type: queue
    queue: {QUEUE}
"""


def agent_name(index: int) -> str:
    return f"agent{index:04d}"


def caller_number(index: int) -> str:
    if not 0 <= index < MAX_CALLERS:
        raise ValueError(f"at most {MAX_CALLERS} bench callers")
    return f"+44163296{index:04d}"


def source_address(index: int) -> str:
    """The loopback address page `index` logs in from (its own: the per-address throttle)."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


# --- /proc -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_busy() -> dict[int, tuple[float, float, float]]:
    """(busy, total, steal) jiffies of each CPU from /proc/stat (busy: all but idle, iowait
    and steal; steal: time the hypervisor ran something else on this virtual CPU)."""
    out: dict[int, tuple[float, float, float]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            v = [int(x) for x in values[:8]]
            out[int(name[3:])] = (float(sum(v) - v[3] - v[4] - v[7]), float(sum(v)), float(v[7]))
    return out


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` on `cpus` (threads made later inherit their creator's set)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


def renice(pid: int, value: int) -> bool:
    """Every thread of `pid` at niceness `value` (threads made later inherit it); False when
    not allowed (lowering it needs root)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), value)
    except OSError:
        return False
    return True


def machine() -> str:
    model = "cpu ?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, nproc {os.cpu_count()}, Python {sys.version.split()[0]}"


# --- the service process -----------------------------------------------------------------------


class RigError(Exception):
    """The rig cannot go on; the message says why."""


@dataclass
class ServerRig:
    """The service (`python -m bench.desk_rig serve`) in its own process."""

    workdir: Path
    agents: int
    rtp_range: tuple[int, int]
    diagnose: bool = False
    """Run a watchdog thread in the service that samples the loop's stack when it stalls."""
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.agents > MAX_CALLERS:
            raise RigError(f"at most {MAX_CALLERS} agents")
        self.log_path = self.workdir / "service.log"
        self.ready_path = self.workdir / "rig.json"

    def _prepare(self) -> None:
        ivr = self.workdir / "ivr"
        (ivr / "flows").mkdir(parents=True, exist_ok=True)
        (ivr / "prompts").mkdir(exist_ok=True)
        (ivr / "flows" / "bench.yaml").write_text(FLOW)
        names = [SCREEN_POP_AGENT] + [agent_name(i) for i in range(self.agents)]
        lines = [
            "queues:",
            f"  {QUEUE}:",
            "    strategy: longest-idle",
            "    ring_timeout: 30",
            "    wrap_up: 0",
            "    announce_every: null",
            "agents:",
            *(f"  {name}: {{queues: [{QUEUE}], wrap_up: 0}}" for name in names),
        ]
        (ivr / "queues.yaml").write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        trunks = [
            {"name": "bench", "peers": [f"{HOST}/32"], "numbers": {TRUNK_NUMBER: "flow:bench"}}
        ]
        env.update(
            CALLCENTER_DATA_DIR=str(self.workdir / "data"),
            CALLCENTER_RECORDINGS_DIR=str(self.workdir / "recordings"),
            CALLCENTER_IVR_DIR=str(self.workdir / "ivr"),
            CALLCENTER_SIP_HOST=HOST,
            CALLCENTER_SIP_PORT="0",
            CALLCENTER_HTTP_HOST=HOST,
            CALLCENTER_HTTP_PORT="0",
            CALLCENTER_RTP_PORT_MIN=str(self.rtp_range[0]),
            CALLCENTER_RTP_PORT_MAX=str(self.rtp_range[1]),
            CALLCENTER_TRUNKS=json.dumps(trunks),
            CALLCENTER_SECRET_KEY=secrets.token_urlsafe(48),
            CALLCENTER_LOG_LEVEL="INFO",
        )
        return env

    def start(self) -> None:
        self._prepare()
        command = [sys.executable, "-m", "bench.desk_rig", "serve", str(self.agents)]
        if self.diagnose:
            command.append("--diagnose")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                env=self.env(),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready_path.exists():
                self.info = json.loads(self.ready_path.read_text())
                return
            if self.proc.poll() is not None:
                raise RigError(f"the service exited ({self.proc.returncode}):\n{self.log_tail()}")
            time.sleep(0.05)
        raise RigError(f"the service was not ready in {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.info['http_port']}"

    @property
    def sip_port(self) -> int:
        return int(self.info["sip_port"])

    def request(self, command: str) -> dict[str, Any]:
        with socket.create_connection((HOST, self.info["control_port"]), timeout=10) as sock:
            sock.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RigError(f"the service died (exit {code}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def problems(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [
                line
                for line in self.log_path.read_text(errors="replace").splitlines()
                if " WARNING " in line or " ERROR " in line or "Traceback" in line
            ]
        return []

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def serve_main(agents: int, diagnose: bool = False) -> int:
    from callcenter.cli import migrate, run_async
    from callcenter.settings import Settings

    settings = Settings()
    if migrate(settings) != 0:
        return 1
    return run_async(lambda: _serve(settings, agents, diagnose))


async def _serve(settings: Any, agents: int, diagnose: bool) -> int:
    from callcenter.cli import build_services
    from callcenter.db.session import create_engine
    from callcenter.engine.sip_endpoint import SipEndpoint
    from callcenter.services.desk import AgentDesk
    from callcenter.web.server import WebServer

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    engine = create_engine(settings.database_url)
    started: list[Any] = []
    try:
        await _seed(engine, settings, agents)
        services = build_services(settings, engine)
        for service in services:
            await service.start()
            started.append(service)
        gc.collect()
        gc.freeze()  # as `serve` does
        endpoint, web = services[0], services[-1]
        assert isinstance(endpoint, SipEndpoint) and isinstance(web, WebServer)
        clock, calls = endpoint.clock, endpoint.calls
        assert clock is not None and calls is not None
        probe = StallProbe()
        clock.add(probe)
        gc.callbacks.append(probe.on_gc)
        if diagnose:
            probe.watch()
        desk = next(s for s in services if isinstance(s, AgentDesk))
        names = [SCREEN_POP_AGENT] + [agent_name(i) for i in range(agents)]

        def stats() -> dict[str, Any]:
            legs = {}
            for name in names:
                phone = desk.phones.get(name)
                if phone is not None:
                    leg = phone.leg
                    legs[name] = {k: getattr(leg, k) for k in LEG_COUNTERS} | {
                        "target": leg.target,
                        "delay": leg.delay,
                        "attached": leg.attached,
                        "on_call": phone.current is not None,
                    }
            return {
                "clock": {
                    "ticks": clock.ticks,
                    "late_ticks": clock.late_ticks,
                    "max_lateness": clock.max_lateness,
                    "skipped_slots": clock.skipped_slots,
                    "tickables": len(clock),
                },
                "legs": legs,
                "calls": calls.active,
                "gc": [s["collections"] for s in gc.get_stats()],
                "probe": probe.report(),
                "time": time.monotonic(),
            }

        async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while line := await reader.readline():
                    command = line.decode().strip()
                    if command == "stats":
                        answer: dict[str, Any] = stats()
                    elif command == "heap":
                        # What a full collection would walk (outside the windows: O(objects)).
                        answer = {
                            "tracked": [len(gc.get_objects(g)) for g in range(3)],
                            "frozen": gc.get_freeze_count(),
                        }
                    elif command == "reset-lateness":
                        # The clock's max_lateness is "since start": start it again for a window.
                        clock.max_lateness = 0.0
                        probe.reset()
                        answer = {"ok": True}
                    else:
                        answer = {"error": f"unknown command {command!r}"}
                    writer.write(json.dumps(answer).encode() + b"\n")
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(control, HOST, 0)
        info = {
            "pid": os.getpid(),
            "http_port": web.port,
            "sip_port": endpoint.port,
            "control_port": server.sockets[0].getsockname()[1],
            "loop": f"{type(loop).__module__}.{type(loop).__name__}",
        }
        ready = Path(settings.data_dir).parent / "rig.json"
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.rename(ready)
        await stopping.wait()
        server.close()
        return 0
    finally:
        for service in reversed(started):
            await service.stop()
        await engine.dispose()


class StallProbe:
    """Bench instrumentation inside the service: the interval between consecutive media clock
    ticks (a tickable added first, so it runs at the start of each tick) and the pauses of the
    garbage collector (gc.callbacks), to tell what made a tick late."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.last = 0.0
        self.ticks = 0
        self.stalls: list[tuple[float, float]] = []  # (monotonic time, interval) of long gaps
        self.max_interval = 0.0
        self.gc_started = 0.0
        self.gc_pauses = [0, 0, 0]
        self.gc_seconds = [0.0, 0.0, 0.0]
        self.gc_max = 0.0
        self.samples: list[list[str]] = []  # the loop's stack in stalls (`watch`)

    def tick(self, n: int) -> None:
        now = time.monotonic()
        if self.last:
            interval = now - self.last
            if interval > self.max_interval:
                self.max_interval = interval
            if interval > STALL and len(self.stalls) < 100:
                self.stalls.append((now, interval))
        self.last = now
        self.ticks += 1

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self.gc_started
        generation = info.get("generation", 0)
        self.gc_pauses[generation] += 1
        self.gc_seconds[generation] += took
        self.gc_max = max(self.gc_max, took)

    def watch(self, threshold: float = 0.040) -> None:
        """A thread that, when no tick came for `threshold` s, samples the loop thread's stack
        (once per stall): Python code there is what held the loop; the selector's wait means
        the process was not running (the machine) or nothing was due."""
        import threading
        import traceback

        main = threading.main_thread().ident

        def run() -> None:
            sampled_at = 0.0
            while True:
                time.sleep(0.005)
                last = self.last
                if last and last != sampled_at and time.monotonic() - last > threshold:
                    sampled_at = last
                    frame = sys._current_frames().get(main or 0)
                    if frame is not None and len(self.samples) < 50:
                        stack = traceback.extract_stack(frame)[-12:]
                        self.samples.append(
                            [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack]
                        )

        threading.Thread(target=run, name="stall-watchdog", daemon=True).start()

    def report(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "max_interval": self.max_interval,
            "stalls": self.stalls,
            "gc_pauses": self.gc_pauses,
            "gc_seconds": self.gc_seconds,
            "gc_max": self.gc_max,
        }


async def _seed(engine: Any, settings: Any, agents: int) -> None:
    from sqlalchemy import select, update

    from callcenter.db.models import User
    from callcenter.db.session import create_sessionmaker
    from callcenter.services.accounts import AccountService
    from callcenter.services.customers import CustomerService
    from callcenter.services.subscribers import add_user

    sessions = create_sessionmaker(engine)
    names = [SCREEN_POP_AGENT] + [agent_name(i) for i in range(agents)]
    async with sessions.begin() as session:
        for name in names:
            await add_user(session, username=name, role="agent", realm=settings.sip_realm)
    await AccountService(sessions).set_password(names[0], PASSWORD)
    async with sessions.begin() as session:
        hashed = await session.scalar(select(User.password_hash).where(User.username == names[0]))
        await session.execute(
            update(User).where(User.username.in_(names[1:])).values(password_hash=hashed)
        )
    customers = CustomerService(sessions, default_region=settings.default_region)
    await customers.create(
        name="Pat Popup", company="Screen Pop Ltd", tier="gold", phones=[POP_NUMBER]
    )
    for i in range(agents):
        await customers.create(name=f"Bench Caller {i}", phones=[caller_number(i)])


# --- the load generator: lean pages and callers -------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SEQ = struct.Struct(">I")
_TWO = struct.Struct(">II")
_RTP = struct.Struct("!BBHII")
AUDIO_BYTES = 8 + 160


def tone_frame() -> bytes:
    """20 ms of 1 kHz at -10 dBFS in µ-law (8 samples a period: every frame is the same)."""
    from callcenter.media import ToneGenerator, ulaw_encode

    return bytes(ulaw_encode(ToneGenerator((1000.0,), -10.0).next_frame()))


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


class Window:
    """What one generator measures between `begin` and `end`."""

    def __init__(self) -> None:
        self.on = False
        self.intervals = array.array("d")  # page: seconds between consecutive audio frames
        self.lateness = array.array("d")  # the generator's own sends: seconds behind schedule
        self.stalls: list[tuple[float, float]] = []  # (monotonic time, lateness) > STALL


class LeanPage(asyncio.Protocol):
    """One agent page: PageClient for HTTP, a lean RFC 6455 client for its socket."""

    def __init__(self, index: int, base_url: str, window: Window, payload: bytes) -> None:
        from tests.web.page_client import PageClient

        self.index = index
        self.name = agent_name(index)
        self.base_url = base_url
        self.window = window
        self.payload = payload
        self.client = PageClient(base_url)
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.handshake: asyncio.Future[None] | None = None
        self.hello: asyncio.Future[None] | None = None
        self.closed = True
        self.talking = False
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.state = ""
        self.call_id = ""
        self.offers = 0
        self.answer_errors: list[str] = []
        self.tx_seq = 0
        self.prefix = b""
        self.head = 0
        self.key = 0
        self.masked_payload = b""
        self.last_seq: int | None = None
        self.last_at = 0.0
        self.reset()

    def reset(self) -> None:
        self.rx = self.gaps = self.reordered = self.tx = 0

    async def login(self) -> None:
        import httpx

        await self.client.http.aclose()
        self.client.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=60.0,
            transport=httpx.AsyncHTTPTransport(local_address=source_address(self.index)),
        )
        await self.client.login(self.name, PASSWORD)

    # --- the socket ---------------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.handshake = loop.create_future()
        self.hello = loop.create_future()
        self.buffer, self.upgraded, self.last_seq = b"", False, None
        self.answered.clear()
        self.ended.clear()
        port = int(self.base_url.rsplit(":", 1)[1])
        await loop.create_connection(lambda: self, HOST, port)
        assert self.transport is not None
        key = base64.b64encode(secrets.token_bytes(16))
        self._accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.http.cookies.items())
        self.transport.write(
            (
                "GET /api/agent/ws HTTP/1.1\r\n"
                f"Host: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {self.base_url}\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        await asyncio.wait_for(self.handshake, 30)
        await asyncio.wait_for(self.hello, 30)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not registered as an asyncio.Transport.
        self.transport = transport  # type: ignore[assignment]
        self.closed = False
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The connection's masking key; the audio part (at offset 8, a multiple of 4) is
        # masked once, the header's two words per frame.
        key = secrets.token_bytes(4)
        self.key = int.from_bytes(key, "big")
        self.prefix = b"\x82\xfe" + AUDIO_BYTES.to_bytes(2, "big") + key
        self.head = 0x0100_0000 ^ self.key  # kind 1, codec 0 (PCMU), reserved 0
        self.masked_payload = _mask(self.payload, key)
        self.mask_key = key

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.talking = False
        for future in (self.handshake, self.hello):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("socket closed"))

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            head = data[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 101") or self._accept.decode() not in head:
                assert self.handshake is not None
                if not self.handshake.done():
                    self.handshake.set_exception(ConnectionError(head.split("\r\n", 1)[0]))
                return
            self.upgraded = True
            assert self.handshake is not None
            self.handshake.set_result(None)
            data = data[end + 4 :]
        i, n = 0, len(data)
        while n - i >= 2:
            length = data[i + 1] & 0x7F
            if length == 126:
                if n - i < 4:
                    break
                length = (data[i + 2] << 8) | data[i + 3]
                start = i + 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                start = i + 10
            else:
                start = i + 2
            end = start + length
            if end > n:
                break
            opcode = data[i] & 0x0F
            if opcode == 2:
                if length == AUDIO_BYTES and data[start] == 1:
                    self._audio(_SEQ.unpack_from(data, start + 4)[0])
            elif opcode == 1:
                self._event(json.loads(data[start:end]))
            elif opcode == 9:
                self._send_control(0xA, data[start:end])
            elif opcode == 8:
                self._send_control(0x8, data[start : start + 2])
                if self.transport is not None:
                    self.transport.close()
            i = end
        if i < n:
            self.buffer = data[i:]

    def _audio(self, seq: int) -> None:
        now = time.perf_counter()
        window = self.window
        if window.on:
            self.rx += 1
            last = self.last_seq
            if last is not None:
                step = (seq - last) & 0xFFFF_FFFF
                if step != 1:
                    if step < 0x8000_0000:
                        self.gaps += step - 1
                    else:
                        self.reordered += 1
                window.intervals.append(now - self.last_at)
        self.last_seq = seq
        self.last_at = now

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "call.offered":
            self.offers += 1
            call_id = event["call"]["call_id"]
            asyncio.get_running_loop().create_task(self._answer(call_id))
        elif kind == "call.answered":
            self.call_id = event["call"]["call_id"]
            self.talking = True
            self.answered.set()
        elif kind == "call.ended":
            self.talking = False
            self.ended.set()
        elif kind == "agent.state":
            self.state = event.get("state", "")
        elif kind == "hello":
            self.state = event["agent"]["state"]
            if self.hello is not None and not self.hello.done():
                self.hello.set_result(None)

    async def _answer(self, call_id: str) -> None:
        response = await self.client.call("POST", f"/api/calls/{call_id}/answer")
        if response.status_code >= 300:
            self.answer_errors.append(f"{response.status_code} {response.text[:100]}")

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        key = secrets.token_bytes(4)
        self.transport.write(
            bytes((0x80 | opcode, 0x80 | len(payload))) + key + _mask(payload, key)
        )

    def send_audio(self) -> None:
        """One 20 ms frame to the server (called by the generator's timer)."""
        transport = self.transport
        if transport is None or self.closed:
            return
        seq = self.tx_seq
        transport.write(self.prefix + _TWO.pack(self.head, seq ^ self.key) + self.masked_payload)
        self.tx_seq = (seq + 1) & 0xFFFF_FFFF
        if self.window.on:
            self.tx += 1

    async def close(self) -> None:
        self.talking = False
        if self.transport is not None and not self.closed:
            self._send_control(0x8, (1000).to_bytes(2, "big"))
            await asyncio.sleep(0.05)
            self.transport.close()
        self.transport = None


class LeanRtp(asyncio.DatagramProtocol):
    """A caller's RTP socket: PCMU every 20 ms (when told), counts what comes back."""

    def __init__(self, window: Window, payload: bytes) -> None:
        self.window = window
        self.payload = payload
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.dest: tuple[str, int] | None = None
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)
        self.last_seq: int | None = None
        self.reset()

    def reset(self) -> None:
        self.rx = self.gaps = self.tx = 0

    @classmethod
    async def open(cls, window: Window, payload: bytes) -> LeanRtp:
        peer = cls(window, payload)
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: peer, local_addr=(HOST, 0)
        )
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12:
            return
        seq = (data[2] << 8) | data[3]
        if self.window.on:
            self.rx += 1
            if self.last_seq is not None:
                step = (seq - self.last_seq) & 0xFFFF
                if 1 < step < 0x8000:
                    self.gaps += step - 1
        self.last_seq = seq

    def send(self) -> None:
        if self.dest is None or self.transport is None:
            return
        self.transport.sendto(
            _RTP.pack(0x80, 0, self.seq, self.ts, self.ssrc) + self.payload, self.dest
        )
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFF_FFFF
        if self.window.on:
            self.tx += 1

    def close(self) -> None:
        self.dest = None
        if self.transport is not None:
            self.transport.close()


class BenchCaller:
    """One trunk caller: tests.engine.test_bridge.Caller for SIP, LeanRtp for media."""

    def __init__(self, caller: Any, rtp: LeanRtp, server_port: int) -> None:
        self.caller = caller
        self.rtp = rtp
        self.server_port = server_port
        self.up = False
        self.invite_at = 0.0

    @classmethod
    async def open(
        cls, server_port: int, number: str, window: Window, payload: bytes
    ) -> BenchCaller:
        from tests.engine.sip_client import UdpClient
        from tests.engine.test_bridge import Caller

        rtp = await LeanRtp.open(window, payload)
        caller = Caller(await UdpClient.open(), rtp, server_port, TRUNK_NUMBER, user=number)  # type: ignore[arg-type]
        # Unique per call: a UDP port (hence the default Call-ID and INVITE branch) reused
        # within Timer L of an earlier call would look like that call's retransmission.
        caller.call_id = f"bench-{secrets.token_hex(8)}@{HOST}"
        return cls(caller, rtp, server_port)

    async def place(self, timeout: float = 15.0) -> float:
        """INVITE -> 200 -> ACK; returns the seconds to the 200. Raises RigError."""
        from callcenter.sip.sdp import parse_sdp
        from tests.engine.phone import final

        started = self.invite_at = time.perf_counter()
        self.caller.invite()
        try:
            _, ok = await final(self.caller.sip, timeout=timeout)
        except AssertionError as exc:
            raise RigError(f"no answer to the INVITE: {exc}") from None
        if ok.status != 200:
            raise RigError(f"INVITE answered {ok.status}")
        took = time.perf_counter() - started
        self.caller.to_tag = ok.response.to_tag or ""
        self.caller.ack()
        self.rtp.dest = (HOST, parse_sdp(ok.response.body).media[0].port)
        self.up = True
        return took

    async def hang_up(self, timeout: float = 5.0) -> bool:
        """BYE, and wait for its 200 (answering a BYE of the service's own if one comes)."""
        from callcenter.sip import Request, make_response, parse_message

        self.rtp.dest = None
        if not self.up:
            return True
        self.up = False
        caller = self.caller
        caller.sip.send(caller.request("BYE", 2), self.server_port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(caller.sip.collector.queue.get(), left)
            except TimeoutError:
                break
            if data.startswith(b"SIP/2.0 ") and b" BYE\r\n" in data:
                return bool(data.startswith(b"SIP/2.0 200"))
            if data.startswith(b"BYE "):
                bye = parse_message(data)
                assert isinstance(bye, Request)
                caller.sip.send(bytes(make_response(bye, 200)), self.server_port)
                return True
        return False

    def close(self) -> None:
        self.caller.close()


async def bounded(works: Iterable[Awaitable[T]], limit: int) -> list[T | BaseException]:
    gate = asyncio.Semaphore(limit)

    async def one(work: Awaitable[T]) -> T:
        async with gate:
            return await work

    return await asyncio.gather(*(one(w) for w in works), return_exceptions=True)


class Generator:
    """One load-generator process: its share of the pages and the callers, one timer."""

    def __init__(self, conn: Connection, base_url: str, sip_port: int, indices: list[int]) -> None:
        self.conn = conn
        self.base_url = base_url
        self.sip_port = sip_port
        self.window = Window()
        self.payload = tone_frame()
        self.pages = [LeanPage(i, base_url, self.window, self.payload) for i in indices]
        self.open_pages: list[LeanPage] = []
        self.callers: list[BenchCaller] = []
        self.slots: list[list[LeanPage | LeanRtp]] = [[] for _ in range(SLOTS)]
        self.handles: list[asyncio.TimerHandle] = []

    # --- the timer ------------------------------------------------------------------------

    def _start_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop_start = loop.time() + 0.05
        self.mono_start = time.monotonic() + 0.05
        for slot in range(SLOTS):
            self.handles.append(
                loop.call_at(self.loop_start + slot * FRAME / SLOTS, self._fire, slot, 0)
            )

    def _fire(self, slot: int, n: int) -> None:
        offset = slot * FRAME / SLOTS
        window = self.window
        if window.on:
            now = time.monotonic()
            late = now - (self.mono_start + n * FRAME + offset)
            window.lateness.append(late)
            if late > STALL and len(window.stalls) < 1000:
                window.stalls.append((now, late))
        for stream in self.slots[slot]:
            if isinstance(stream, LeanPage):
                if stream.talking:
                    stream.send_audio()
            else:
                stream.send()
        loop = asyncio.get_running_loop()
        self.handles[slot] = loop.call_at(
            self.loop_start + (n + 1) * FRAME + offset, self._fire, slot, n + 1
        )

    def _add(self, stream: LeanPage | LeanRtp, index: int) -> None:
        self.slots[index % SLOTS].append(stream)

    def _remove_all(self) -> None:
        for slot in self.slots:
            slot.clear()

    # --- commands -------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._start_timer()
        while True:
            command, arg = await loop.run_in_executor(None, self.conn.recv)
            if command == "quit":
                break
            try:
                answer = await getattr(self, f"do_{command}")(arg)
            except Exception as exc:  # reported to the orchestrator, which decides
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.conn.send(answer)
        for handle in self.handles:
            handle.cancel()
        for page in self.pages:
            await page.close()
            await page.client.http.aclose()

    async def do_login(self, _: Any) -> dict[str, Any]:
        started = time.perf_counter()
        results = await bounded((p.login() for p in self.pages), 4)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        return {
            "seconds": time.perf_counter() - started,
            "errors": errors[:3],
            "failed": len(errors),
        }

    async def do_open(self, count: int) -> dict[str, Any]:
        """Open the first `count` pages' sockets and make them available."""
        pages = self.pages[:count]

        opened_at: list[float] = []

        async def one(page: LeanPage) -> None:
            await page.open()
            opened_at.append(time.monotonic())
            await page.client.ok("PUT", "/api/agent/state", {"state": "available"})

        results = await bounded((one(p) for p in pages), 20)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        self.open_pages = [p for p, r in zip(pages, results, strict=True) if r is None]
        for page in self.open_pages:
            self._add(page, page.index)
        return {
            "open": len(self.open_pages),
            "errors": errors[:3],
            "failed": len(errors),
            "opened": (min(opened_at, default=0.0), max(opened_at, default=0.0)),
        }

    async def do_call(self, indices: list[int]) -> dict[str, Any]:
        """Place a call from caller number i for each i (bounded concurrency)."""

        async def one(index: int) -> float:
            caller = await BenchCaller.open(
                self.sip_port, caller_number(index), self.window, self.payload
            )
            self.callers.append(caller)
            took = await caller.place()
            self._add(caller.rtp, index)
            return took

        results = await bounded((one(i) for i in indices), 10)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        setup = [r for r in results if isinstance(r, float)]
        return {"placed": len(setup), "errors": errors[:3], "failed": len(errors), "setup": setup}

    async def do_wait_up(self, timeout: float) -> dict[str, Any]:
        """Until every open page is talking (or `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all(p.talking for p in self.open_pages):
                break
            await asyncio.sleep(0.05)
        errors = [e for p in self.open_pages for e in p.answer_errors]
        return {
            "talking": sum(p.talking for p in self.open_pages),
            "open": len(self.open_pages),
            "offers": sum(p.offers for p in self.open_pages),
            "answer_errors": errors[:3],
        }

    async def do_begin(self, _: Any) -> dict[str, Any]:
        window = self.window
        window.intervals = array.array("d")
        window.lateness = array.array("d")
        window.stalls = []
        for page in self.open_pages:
            page.reset()
        for caller in self.callers:
            caller.rtp.reset()
        window.on = True
        self.began = time.perf_counter()
        return {"ok": True}

    async def do_end(self, _: Any) -> dict[str, Any]:
        self.window.on = False
        seconds = time.perf_counter() - self.began
        pages = self.open_pages
        callers = [c for c in self.callers if c.up]
        return {
            "seconds": seconds,
            "pages": len(pages),
            "talking": sum(p.talking for p in pages),
            "page_rx": sum(p.rx for p in pages),
            "page_gaps": sum(p.gaps for p in pages),
            "page_reordered": sum(p.reordered for p in pages),
            "page_tx": sum(p.tx for p in pages),
            "page_tx_by_agent": {p.name: p.tx for p in pages},
            "page_min_rx": min((p.rx for p in pages), default=0),
            "callers": len(callers),
            "rtp_rx": sum(c.rtp.rx for c in callers),
            "rtp_gaps": sum(c.rtp.gaps for c in callers),
            "rtp_tx": sum(c.rtp.tx for c in callers),
            "intervals": self.window.intervals.tobytes(),
            "lateness": self.window.lateness.tobytes(),
            "stalls": self.window.stalls,
        }

    async def do_hangup(self, _: Any) -> dict[str, Any]:
        callers, self.callers = self.callers, []
        byes = await bounded((c.hang_up() for c in callers), 50)
        for caller in callers:
            caller.close()
        pages, self.open_pages = self.open_pages, []

        async def leave(page: LeanPage) -> None:
            if page.talking or page.answered.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(page.ended.wait(), 10)
            response = await page.client.call("PUT", "/api/agent/state", {"state": "logged-out"})
            if response.status_code >= 300:
                raise RigError(f"{page.name} logged-out: {response.status_code} {response.text}")
            await page.close()

        left = await bounded((leave(p) for p in pages), 50)
        self._remove_all()
        problems = [repr(r) for r in left if isinstance(r, BaseException)]
        problems += [f"BYE not answered {r}" for r in byes if r is not True]
        return {"problems": problems[:5], "count": len(problems)}


def worker_main(
    conn: Connection, base_url: str, sip_port: int, indices: list[int], cpus: set[int] | None
) -> None:
    """A load-generator process (multiprocessing target)."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    sys.path.insert(0, str(REPO))
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(Generator(conn, base_url, sip_port, indices).run())


# --- statistics ---------------------------------------------------------------------------------


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    import numpy as np

    if len(values) == 0:
        return [math.nan for _ in qs]
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), qs)]


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        sys.exit(serve_main(int(sys.argv[2]), "--diagnose" in sys.argv[3:]))
    print("usage: python -m bench.desk_rig serve AGENTS (started by bench_browser_agents)")
    sys.exit(2)
