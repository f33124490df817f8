"""Micro-benchmark (not a test): two-party rooms mixing vs forwarding, real loopback sockets.

    .venv/bin/python -m bench.bench_room_forward [rooms] [seconds] [--uvloop]

Opens `rooms` rooms of two RTP legs each (PCMU both sides), and a load process with one
peer per leg that sends a 20 ms µ-law frame every 20 ms and counts what comes back. The
same rooms run twice: `Room(forward=False)` (every tick reads, decodes, mixes, encodes and
sends for each leg) and `Room()` (the legs forward each other's packets in the datagram
callback; the tick only renews the link). Only the engine process is measured
(time.process_time: the load process runs on another core), so the figures are what a
server pays: CPU per tick of the rooms alone, the whole process's CPU (receiving included),
and packets sent per CPU second, from which the two-party calls one core could carry.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from callcenter.engine.media import MediaClock, Room, RtpLeg, RtpPortPool
from callcenter.media import ToneGenerator, ulaw_encode
from callcenter.rtp import build_rtp
from callcenter.sip.offer_answer import Negotiated, answer_offer, build_offer

HOST = "127.0.0.1"
INTERVAL = 0.02
WARM_UP = 1.0


def negotiate(local_port: int, remote_port: int) -> Negotiated:
    offer = build_offer(address=HOST, port=remote_port, session_id=1)
    return answer_offer(offer, local_address=HOST, local_port=local_port, session_id=2)


# --- the load process: one peer per leg ------------------------------------------------------


class CountingPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1


def _factory(peer: CountingPeer) -> Callable[[], CountingPeer]:
    return lambda: peer


async def _load_main(conn: Connection, leg_ports: list[int]) -> None:
    loop = asyncio.get_running_loop()
    peers: list[CountingPeer] = []
    for _ in leg_ports:
        peer = CountingPeer()
        await loop.create_datagram_endpoint(_factory(peer), local_addr=(HOST, 0))
        peers.append(peer)
    conn.send([p.transport.get_extra_info("sockname")[1] for p in peers])
    await loop.run_in_executor(None, conn.recv)  # "go"
    payload = ulaw_encode(ToneGenerator((1000.0,), -10.0).next_frame())
    dests = [(HOST, port) for port in leg_ports]
    start = loop.time()
    state = {"n": 0, "sent": 0}
    handle: list[asyncio.TimerHandle | asyncio.Handle] = []

    def send_all() -> None:
        n = state["n"]
        seq, ts = n & 0xFFFF, (n * 160) & 0xFFFF_FFFF
        for i, (peer, dest) in enumerate(zip(peers, dests, strict=True)):
            peer.transport.sendto(build_rtp(0, seq, ts, i + 1, payload), dest)
        state["sent"] += len(peers)
        state["n"] = n + 1
        handle[:] = [loop.call_at(start + (n + 1) * INTERVAL, send_all)]

    handle.append(loop.call_soon(send_all))
    await loop.run_in_executor(None, conn.recv)  # "stop"
    handle[0].cancel()
    conn.send({"sent": state["sent"], "received": sum(p.count for p in peers)})
    for peer in peers:
        peer.transport.close()


def _load_process(conn: Connection, leg_ports: list[int], use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        uvloop.run(_load_main(conn, leg_ports))
    else:
        asyncio.run(_load_main(conn, leg_ports))


# --- the engine --------------------------------------------------------------------------------


class TimedRooms:
    """The rooms as one tickable, so the CPU of their ticks can be told apart."""

    def __init__(self, rooms: list[Room]) -> None:
        self.rooms = rooms
        self.cpu = 0.0
        self.ticks = 0

    def tick(self, n: int) -> None:
        t0 = time.process_time()
        for room in self.rooms:
            room.tick(n)
        self.cpu += time.process_time() - t0
        self.ticks += 1


async def run(rooms_count: int, seconds: float, forward: bool, use_uvloop: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    pool = RtpPortPool(HOST, 30000, 30000 + 8 * rooms_count + 400)
    legs: list[RtpLeg] = [await pool.open_leg() for _ in range(2 * rooms_count)]
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    load = ctx.Process(
        target=_load_process, args=(theirs, [leg.port for leg in legs], use_uvloop), daemon=True
    )
    load.start()
    peer_ports: list[int] = await loop.run_in_executor(None, ours.recv)
    rooms: list[Room] = []
    for i in range(rooms_count):
        room = Room(forward=forward)
        for leg, port in zip(legs[2 * i : 2 * i + 2], peer_ports[2 * i : 2 * i + 2], strict=True):
            leg.connect(negotiate(leg.port, port))
            room.add(leg)
        rooms.append(room)
    timed = TimedRooms(rooms)
    clock = MediaClock()
    clock.add(timed)
    clock.start()
    ours.send("go")
    await asyncio.sleep(WARM_UP)
    wall0, cpu0, ticks0, tick_cpu0 = loop.time(), time.process_time(), timed.ticks, timed.cpu
    sent0 = sum(leg.packets_sent for leg in legs)
    await asyncio.sleep(seconds)
    wall = loop.time() - wall0
    cpu = time.process_time() - cpu0
    ticks = timed.ticks - ticks0
    tick_cpu = timed.cpu - tick_cpu0
    sent = sum(leg.packets_sent for leg in legs) - sent0
    forwarding = sum(room.forwarding for room in rooms)
    ours.send("stop")
    load_counts: dict[str, int] = await loop.run_in_executor(None, ours.recv)
    await clock.stop()
    for leg in legs:
        await leg.close()
    load.join(5)
    cpu_share = cpu / wall
    return {
        "mode": "forward" if forward else "mix",
        "rooms": rooms_count,
        "rooms_forwarding": forwarding,
        "ticks": ticks,
        "tick_cpu_us": tick_cpu / ticks * 1e6,
        "process_cpu_share": cpu_share,
        "process_cpu_us_per_tick": cpu / ticks * 1e6,
        "packets_sent_per_s": sent / wall,
        "packets_per_cpu_s": sent / cpu,
        "calls_per_core": rooms_count / cpu_share,
        "late_ticks": clock.late_ticks,
        "max_lateness_ms": clock.max_lateness * 1e3,
        "load_sent": load_counts["sent"],
        "load_received": load_counts["received"],
        "forwarded": sum(leg.forwarded for leg in legs),
    }


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = multiprocessing.cpu_count()
    return f"{model}, {cores} cores, Python {platform.python_version()}"


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['mode']:>7}: {result['rooms']} rooms ({result['rooms_forwarding']} forwarding), "
        f"room ticks {result['tick_cpu_us']:.0f} µs CPU/tick, "
        f"process {result['process_cpu_share'] * 100:.1f} % of a core "
        f"({result['process_cpu_us_per_tick']:.0f} µs/tick), "
        f"{result['packets_sent_per_s']:.0f} packets/s sent = "
        f"{result['packets_per_cpu_s']:.0f} per CPU second, "
        f"~{result['calls_per_core']:.0f} two-party calls per core; "
        f"late ticks {result['late_ticks']}, max lateness {result['max_lateness_ms']:.1f} ms; "
        f"load sent {result['load_sent']}, received {result['load_received']}"
    )


async def main(rooms_count: int, seconds: float, use_uvloop: bool) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    print(f"machine: {machine()}; loop={type(loop).__module__}")
    results = []
    for forward in (False, True):
        result = await run(rooms_count, seconds, forward, use_uvloop)
        report(result)
        results.append(result)
    mixing, forwarding = results
    cpu_ratio = mixing["process_cpu_share"] / forwarding["process_cpu_share"]
    tick_ratio = mixing["tick_cpu_us"] / max(forwarding["tick_cpu_us"], 1e-9)
    pps_ratio = forwarding["packets_per_cpu_s"] / mixing["packets_per_cpu_s"]
    print(
        f"forwarding vs mixing: {cpu_ratio:.1f}x less process CPU, {tick_ratio:.0f}x less "
        f"tick CPU, {pps_ratio:.1f}x packets per CPU second"
    )
    return results


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 100
    duration = float(args[1]) if len(args) > 1 else 5.0
    uv = "--uvloop" in sys.argv
    if uv:
        import uvloop

        out = uvloop.run(main(count, duration, uv))
    else:
        out = asyncio.run(main(count, duration, uv))
    if "--json" in sys.argv:
        print(json.dumps({"machine": machine(), "uvloop": uv, "results": out}, indent=2))
