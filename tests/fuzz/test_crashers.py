"""Every input the fuzzer ever flagged, replayed: only SipParseError may come out."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.sip import SipParseError, parse_message
from callcenter.sip.framer import StreamFramer

CRASHERS = sorted(p for p in (Path(__file__).parent / "crashers").iterdir() if p.suffix != ".md")


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_crasher_is_handled(path: Path) -> None:
    data = path.read_bytes()
    for datagram in (True, False):
        try:
            parse_message(data, datagram=datagram)
        except SipParseError:
            pass
    try:
        StreamFramer().feed(data)
    except SipParseError:
        pass
