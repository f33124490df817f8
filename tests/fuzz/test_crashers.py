"""Every input the fuzzer ever flagged, replayed: only SipParseError may come out."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from callcenter.sip import SipParseError, parse_message
from callcenter.sip.framer import StreamFramer

CRASHERS = sorted(p for p in (Path(__file__).parent / "crashers").iterdir() if p.suffix != ".md")


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
def test_crasher_is_handled(path: Path) -> None:
    data = path.read_bytes()
    for datagram in (True, False):
        with contextlib.suppress(SipParseError):
            parse_message(data, datagram=datagram)
    with contextlib.suppress(SipParseError):
        StreamFramer().feed(data)
