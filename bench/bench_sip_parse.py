"""SIP parser throughput and the torture set's worst per-file parse time.

Prints a table and writes bench/results-sip-parse.json. Figures depend on the machine; compare
runs on the same machine, or read them as ratios (e.g. messages per second per core).
"""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from callcenter.sip import SipParseError, parse_message
from callcenter.sip.framer import StreamFramer

ROOT = Path(__file__).resolve().parents[1]
TORTURE = ROOT.parent / "shared" / "sip-torture"
GOLDEN = ROOT / "tests" / "data" / "sip"

INVITE = (
    b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4711-1-0;rport\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=4711SIPpTag001\r\n"
    b"To: service <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: 1-4711@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: sip:sipp@127.0.0.1:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 129\r\n\r\n"
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def rate(data: bytes, seconds: float = 1.0) -> float:
    """Messages parsed per second, best of five rounds."""
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for _ in range(100):
                parse_message(data)
            count += 100
        best = max(best, count / (time.perf_counter() - start))
    return best


def worst_file_ms(paths: list[Path]) -> tuple[str, float]:
    worst = ("", 0.0)
    for path in paths:
        data = path.read_bytes()
        samples = []
        for _ in range(20):
            start = time.perf_counter()
            with contextlib.suppress(SipParseError):
                parse_message(data)
            samples.append(time.perf_counter() - start)
        ms = statistics.median(samples) * 1000
        if ms > worst[1]:
            worst = (path.name, ms)
    return worst


def stream_rate(messages: int = 20000) -> float:
    stream = INVITE * messages
    framer = StreamFramer()
    start = time.perf_counter()
    got = 0
    for i in range(0, len(stream), 1400):
        got += len(framer.feed(stream[i : i + 1400]))
    assert got == messages
    return messages / (time.perf_counter() - start)


def main() -> int:
    torture = sorted(TORTURE.glob("*.dat"))
    name, ms = worst_file_ms(torture) if torture else ("", 0.0)
    results = {
        "scenario": "sip_parse",
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "invite_parse_per_s": round(rate(INVITE)),
        "stream_framer_invites_per_s": round(stream_rate()),
        "torture_worst_file": name,
        "torture_worst_parse_ms": round(ms, 3),
    }
    print(json.dumps(results, indent=2))
    (ROOT / "bench" / "results-sip-parse.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
