"""Coverage-guided fuzzing of the SIP parser, the stream framer, SDP and digest headers (atheris).

Run with `make fuzz` (1,000,000 inputs by default). An input is a finding when it raises
anything but SipParseError, or when it takes longer than 100 ms to parse (re-timed three
times so a noisy machine does not report a pause as a finding). Findings found here are
saved under tests/fuzz/crashers/ and replayed by tests/fuzz/test_crashers.py.
"""

from __future__ import annotations

import sys
import time

import atheris

with atheris.instrument_imports():
    from callcenter.sip import SipParseError, parse_message
    from callcenter.sip.digest import parse_challenge, parse_credentials
    from callcenter.sip.framer import StreamFramer
    from callcenter.sip.sdp import parse_sdp

SLOW_SECONDS = 0.1
_slowest = [0.0]


def run_one(data: bytes) -> None:
    """Feed one input to the target its first byte selects."""
    selector, payload = (data[0] % 5, data[1:]) if data else (0, b"")
    try:
        if selector in (0, 1):
            parse_message(payload, datagram=selector == 0)
        elif selector == 2:
            framer = StreamFramer()
            step = 1 + (len(payload) % 97)
            for i in range(0, len(payload), step):
                framer.feed(payload[i : i + step])
        elif selector == 3:
            parse_sdp(payload)
        else:
            text = payload.decode("utf-8", "surrogateescape")
            parse_credentials(text)
            parse_challenge(text)
    except SipParseError:
        pass


def test_one_input(data: bytes) -> None:
    start = time.perf_counter()
    run_one(data)
    elapsed = time.perf_counter() - start
    if elapsed > _slowest[0]:
        # libFuzzer exits without unwinding Python, so each new maximum is reported as it
        # happens rather than in a summary at the end.
        _slowest[0] = elapsed
        if elapsed > 0.001:
            target = data[0] % 5 if data else 0
            print(
                f"slowest input so far: {elapsed * 1000:.2f} ms"
                f" (target {target}, {len(data)} bytes)",
                file=sys.stderr,
            )
    if elapsed > SLOW_SECONDS:
        best = min(_timed(data) for _ in range(3))
        if best > SLOW_SECONDS:
            raise RuntimeError(f"input took {best * 1000:.1f} ms (limit {SLOW_SECONDS * 1000} ms)")


def _timed(data: bytes) -> float:
    start = time.perf_counter()
    run_one(data)
    return time.perf_counter() - start


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
