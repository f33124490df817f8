"""Micro-benchmark (not a test): CPU per media tick for N Echo legs with loopback peers.

    .venv/bin/python -m bench.bench_media_echo [legs] [seconds] [--uvloop]

Prints the CPU (time.process_time) of the clock's ticks alone (read, decode, encode, send for
every leg) per tick, and the whole process's CPU per tick (ticks + receiving the legs'
datagrams + the peers' own sending and receiving, which a real server does not have).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from callcenter.engine.media import Echo, MediaClock, RtpPortPool
from callcenter.media import ToneGenerator, ulaw_encode
from callcenter.rtp import build_rtp
from tests.engine.rtp_peer import HOST, free_even_base, negotiate


def _factory(peer: CountingPeer) -> Callable[[], CountingPeer]:
    return lambda: peer


class CountingPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1


class TimedTicks:
    """Wraps the echoes: one tickable, so the clock's own overhead is in the figure too."""

    def __init__(self, echoes: list[Echo]) -> None:
        self.echoes = echoes
        self.cpu = 0.0
        self.ticks = 0

    def tick(self, n: int) -> None:
        t0 = time.process_time()
        for echo in self.echoes:
            echo.tick(n)
        self.cpu += time.process_time() - t0
        self.ticks += 1


async def main(legs_count: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    base = free_even_base(legs_count + 8)
    pool = RtpPortPool(HOST, base, base + 2 * (legs_count + 8) - 1)
    clock = MediaClock()
    legs, peers = [], []
    for _ in range(legs_count):
        leg = await pool.open_leg()
        peer = CountingPeer()
        await loop.create_datagram_endpoint(_factory(peer), local_addr=(HOST, 0))
        port = peer.transport.get_extra_info("sockname")[1]
        leg.connect(negotiate(leg.port, port))
        legs.append(leg)
        peers.append(peer)
    timed = TimedTicks([Echo(leg) for leg in legs])
    clock.add(timed)
    payload = ulaw_encode(ToneGenerator((1000.0,), -10.0).next_frame())
    start = loop.time()
    state = {"n": 0}

    def send_all() -> None:
        n = state["n"]
        for i, (peer, leg) in enumerate(zip(peers, legs, strict=True)):
            packet = build_rtp(0, n & 0xFFFF, (n * 160) & 0xFFFF_FFFF, i + 1, payload)
            peer.transport.sendto(packet, (HOST, leg.port))
        state["n"] = n + 1
        handle[0] = loop.call_at(start + (n + 1) * 0.02, send_all)

    handle = [loop.call_soon(send_all)]
    clock.start()
    await asyncio.sleep(1.0)  # warm up: latching, jitter buffers settle
    cpu0, ticks0, tick_cpu0 = time.process_time(), timed.ticks, timed.cpu
    await asyncio.sleep(seconds)
    cpu, ticks, tick_cpu = (
        time.process_time() - cpu0,
        timed.ticks - ticks0,
        timed.cpu - tick_cpu0,
    )
    handle[0].cancel()
    await clock.stop()
    echoed = sum(p.count for p in peers)
    for leg in legs:
        await leg.close()
    for peer in peers:
        peer.transport.close()
    print(
        f"{legs_count} echo legs, {ticks} ticks, loop={type(loop).__module__}: "
        f"ticks {tick_cpu / ticks * 1e6:.0f} µs CPU/tick "
        f"({tick_cpu / ticks / legs_count * 1e6:.1f} µs per leg), "
        f"whole process {cpu / ticks * 1e6:.0f} µs CPU/tick; "
        f"late ticks {clock.late_ticks}, max lateness {clock.max_lateness * 1e3:.1f} ms, "
        f"packets echoed {echoed}, played {sum(leg.jitter.played for leg in legs)}"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 100
    duration = float(args[1]) if len(args) > 1 else 5.0
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main(count, duration))
    else:
        asyncio.run(main(count, duration))
