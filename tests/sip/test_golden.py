"""Real messages captured from SIPp, baresip and pyVoIP (tests/data/sip/) parse and round-trip.

Round-trip is byte-exact except one whitespace normalisation: SIPp pads Content-Length with
spaces (`Content-Length:   129`), which we write as `Content-Length: 129`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.sip import Request, Response, SipUri, parse_message
from callcenter.sip.framer import StreamFramer
from callcenter.sip.sdp import parse_sdp

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "sip"
FILES = sorted(GOLDEN.glob("*.sip"))
_PADDED_LENGTH = re.compile(rb"^(Content-Length|l):[ \t]+", re.MULTILINE | re.IGNORECASE)


def test_captures_from_all_three_peers_are_present() -> None:
    peers = {p.name.split("-", 1)[0] for p in FILES}
    assert peers == {"sipp", "baresip", "pyvoip"}
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_round_trip(path: Path) -> None:
    data = path.read_bytes()
    message = parse_message(data)
    expected = _PADDED_LENGTH.sub(lambda m: m.group(1) + b": ", data)
    assert bytes(message) == expected
    assert parse_message(bytes(message)) == message
    # The same bytes through the stream framer, cut into small pieces, give the same message.
    framer = StreamFramer()
    framed = [item for i in range(0, len(data), 13) for item in framer.feed(data[i : i + 13])]
    assert framed == [message]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_fields(path: Path) -> None:
    message = parse_message(path.read_bytes())
    method = path.stem.split("-")[1].upper()
    assert message.top_via.rfc3261_branch
    assert message.from_tag
    if isinstance(message, Request):
        assert message.method == method
        assert isinstance(message.uri, SipUri)
    else:
        assert isinstance(message, Response)
        assert message.status == int(method)
        assert message.to_tag
    if message.content_type == "application/sdp":
        sdp = parse_sdp(message.body)
        assert sdp.media and sdp.media[0].media == "audio"
