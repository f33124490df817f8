"""Micro-benchmark (not a test): CPU per 20 ms frame of one browser leg, both directions.

    .venv/bin/python -m bench.bench_browser_leg [frames] [--json]

One `BrowserLeg` attached to a sink that drops what it is given; each round is what the
engine does per leg per tick: `receive` one page frame (as the web layer hands it over),
`read_frame` (decode) and `write_frame` (encode, header, bytes for the socket). Measured for
G.711 µ-law and for 16-bit PCM, with the receiving half (`receive` + `read_frame`) and the
sending half (`write_frame`) also timed apart. The WebSocket itself (framing, the event loop,
TLS) is the web layer's cost and is not in the figure.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from callcenter.engine.media import BrowserLeg
from callcenter.media import ToneGenerator, ulaw_encode


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
    return f"{model}, {multiprocessing.cpu_count()} cores, Python {platform.python_version()}"


def page_frames(codec: int, count: int) -> list[bytes]:
    """What a page sends: a 1 kHz tone, numbered from 0 (one distinct bytes per message, as
    the socket delivers them)."""
    tone = ToneGenerator((1000.0,), -10.0)
    out = []
    for seq in range(count):
        frame = tone.next_frame()
        payload = ulaw_encode(frame) if codec == 0 else frame.astype("<i2").tobytes()
        out.append(struct.pack(">BBHI", 1, codec, 0, seq) + payload)
    return out


def best_us(run: Callable[[], None], frames: int, repeats: int = 5) -> float:
    """The best of `repeats` runs, in µs of CPU per frame (best: least disturbed by others)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best / frames * 1e6


def measure(codec: str, frames: int) -> dict[str, Any]:
    codec_id = 0 if codec == "pcmu" else 1
    messages = page_frames(codec_id, frames)
    out = ToneGenerator((700.0,), -10.0).next_frame()

    def fresh() -> BrowserLeg:
        leg = BrowserLeg(codec="pcmu" if codec == "pcmu" else "l16")
        leg.attach(lambda data: None)
        return leg

    def round_trip() -> None:
        leg = fresh()
        receive, read, write = leg.receive, leg.read_frame, leg.write_frame
        for data in messages:
            receive(data)
            read()
            write(out)
        assert leg.played >= frames - 3 and leg.frames_out == frames

    def receive_and_read() -> None:
        leg = fresh()
        receive, read = leg.receive, leg.read_frame
        for data in messages:
            receive(data)
            read()

    def write_only() -> None:
        leg = fresh()
        write = leg.write_frame
        for _ in range(frames):
            write(out)

    return {
        "codec": codec,
        "frames": frames,
        "round_trip_us": best_us(round_trip, frames),
        "receive_read_us": best_us(receive_and_read, frames),
        "write_us": best_us(write_only, frames),
    }


def report(result: dict[str, Any]) -> None:
    us = result["round_trip_us"]
    # One leg per agent on a call: 50 frames a second each way.
    share = us * 50 / 1e6
    print(
        f"{result['codec']:>5}: receive + read_frame + write_frame {us:.2f} µs/frame "
        f"(receive + read_frame {result['receive_read_us']:.2f}, "
        f"write_frame {result['write_us']:.2f}); "
        f"{share * 100:.3f} % of a core per leg, ~{1 / share:.0f} legs per core"
    )


def main(frames: int) -> list[dict[str, Any]]:
    print(f"machine: {machine()}")
    results = []
    for codec in ("pcmu", "l16"):
        result = measure(codec, frames)
        report(result)
        results.append(result)
    return results


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    results = main(int(args[0]) if args else 100_000)
    if "--json" in sys.argv:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
