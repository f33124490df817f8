"""Generated messages round-trip byte-exactly; arbitrary bytes only ever raise SipParseError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip import Request, Response, SipParseError, parse_message, parse_uri
from callcenter.sip.framer import StreamFramer

from .strategies import requests, responses, sip_uris


@given(requests())
def test_requests_round_trip(request: Request) -> None:
    data = bytes(request)
    parsed = parse_message(data)
    assert parsed == request
    assert bytes(parsed) == data


@given(responses())
def test_responses_round_trip(response: Response) -> None:
    data = bytes(response)
    parsed = parse_message(data)
    assert parsed == response
    assert bytes(parsed) == data


@given(sip_uris)
def test_uris_round_trip(uri: object) -> None:
    text = str(uri)
    assert parse_uri(text) == uri
    assert str(parse_uri(text)) == text


@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(1, 64), max_size=30))
def test_stream_framer_cuts_any_chunking(messages: list[Request], cuts: list[int]) -> None:
    stream = b"".join(bytes(m) for m in messages)
    framer = StreamFramer()
    out = []
    pos = 0
    for size in cuts:
        out += framer.feed(stream[pos : pos + size])
        pos += size
    out += framer.feed(stream[pos:])
    assert out == messages
    assert framer.pending == 0


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)


@settings(max_examples=300)
@given(requests(), st.data())
def test_mutated_messages_raise_only_sip_parse_error(request: Request, data: st.DataObject) -> None:
    raw = bytearray(bytes(request))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.sampled_from(b'\x00 \t\r\n:;,<>"@[]%=?/\\\xff'))
    try:
        message = parse_message(bytes(raw))
    except SipParseError:
        return
    # Whatever parses must serialise and parse again.
    parse_message(bytes(message))
