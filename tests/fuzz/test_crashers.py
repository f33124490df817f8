"""Every input the fuzzer ever flagged (crashers/) and hand-made hostile inputs (hostile/:
quote, bracket, separator and escape storms, oversized numbers, unterminated heads), replayed
through every entry point: only SipParseError may come out."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from callcenter.sip import SipParseError, parse_message
from callcenter.sip.framer import StreamFramer
from callcenter.sip.sdp import parse_sdp

HERE = Path(__file__).parent
CRASHERS = sorted(
    p for folder in ("crashers", "hostile") for p in (HERE / folder).iterdir() if p.suffix != ".md"
)


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_crasher_is_handled(path: Path) -> None:
    data = path.read_bytes()
    for datagram in (True, False):
        with contextlib.suppress(SipParseError):
            parse_message(data, datagram=datagram)
    with contextlib.suppress(SipParseError):
        StreamFramer().feed(data)
    with contextlib.suppress(SipParseError):
        parse_sdp(data)
