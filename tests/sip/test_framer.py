"""The stream framer: big reads, mixed line endings, keep-alives and its bounds."""

from __future__ import annotations

import pytest

from callcenter.sip import Limits, MessageTooLarge, Request, make_response, parse_message
from callcenter.sip.framer import KeepAliveReceived, MessageRejected, StreamFramer

OPTIONS = (
    b"OPTIONS sip:pbx@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK{n}\r\n"
    b"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:pbx@127.0.0.1>\r\nCall-ID: c{n}\r\n"
    b"CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def options(n: int) -> bytes:
    return OPTIONS.replace(b"{n}", str(n).encode())


def test_one_read_with_many_whole_messages_is_not_a_size_fault() -> None:
    # asyncio hands a stream protocol up to 256 KiB per read; a busy trunk fills it.
    stream = b"".join(options(n) for n in range(1, 701))
    assert len(stream) > 2 * Limits().max_message_size
    framed = StreamFramer().feed(stream)
    assert len(framed) == 700
    assert all(isinstance(m, Request) for m in framed)


def test_incomplete_message_over_the_limit_closes() -> None:
    framer = StreamFramer(Limits(max_message_size=1000))
    framer.feed(options(1))
    with pytest.raises(MessageTooLarge):
        framer.feed(b"INVITE sip:a@b SIP/2.0\r\nSubject: " + b"x" * 1200)


def test_declared_body_over_the_limit_closes() -> None:
    big = options(1).replace(b"Content-Length: 0", b"Content-Length: 999999")
    with pytest.raises(MessageTooLarge):
        StreamFramer().feed(big)


def test_lf_only_and_crlf_messages_share_a_stream() -> None:
    lf_only = options(1).replace(b"\r\n", b"\n")
    stream = lf_only + options(2)
    framer = StreamFramer()
    framed = [m for i in range(0, len(stream), 5) for m in framer.feed(stream[i : i + 5])]
    assert [m.cseq.seq for m in framed if isinstance(m, Request)] == [1, 2]
    assert framer.pending == 0


def test_keep_alives_pongs_and_bodies() -> None:
    invite = parse_message(options(3).replace(b"OPTIONS", b"INVITE"))
    assert isinstance(invite, Request)
    response = make_response(invite, 200, to_tag="x")
    response.set_body(b"v=0\r\n\r\nnot a head end\r\n\r\n", "application/sdp")
    stream = b"\r\n\r\n" + options(1) + b"\r\n" + bytes(response) + b"\r\n\r\n"
    framer = StreamFramer()
    items = [x for b in stream for x in framer.feed(bytes([b]))]
    kinds = [type(x).__name__ for x in items]
    assert kinds == ["KeepAliveReceived", "Request", "Response", "KeepAliveReceived"]
    assert items[2].body == response.body  # type: ignore[union-attr]
    assert isinstance(items[0], KeepAliveReceived)


def test_malformed_but_framed_message_keeps_the_connection() -> None:
    broken = options(1).replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    framed = StreamFramer().feed(broken + options(2))
    assert isinstance(framed[0], MessageRejected) and framed[0].error.status == 400
    assert isinstance(framed[1], Request) and framed[1].cseq.seq == 2
