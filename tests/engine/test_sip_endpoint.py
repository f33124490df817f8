"""The SIP endpoint over real loopback sockets: OPTIONS, §18 routing, honest 405s, torture."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.sip import Request, SipParseError, parse_message
from callcenter.sip.uas import check_request

from ..sip.torture import PARSE, RFC4475, RFC5118, Expect, read_4475, read_5118
from .sip_client import UdpClient, options


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    server = SipEndpoint(EndpointConfig(host="127.0.0.1", port=0))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[UdpClient]:
    udp = await UdpClient.open()
    yield udp
    udp.close()


@pytest.mark.asyncio
async def test_options_over_udp_with_rport(endpoint: SipEndpoint, client: UdpClient) -> None:
    response = await client.request(options(endpoint.port, local_port=client.port), endpoint.port)
    assert response is not None and response.status == 200
    assert response.response.headers.get("allow") == "OPTIONS, ACK, CANCEL"
    assert response.response.to_tag
    via = response.response.top_via
    assert via.received == "127.0.0.1" and via.rport == client.port


@pytest.mark.asyncio
async def test_without_rport_the_response_goes_to_the_sent_by_port(endpoint: SipEndpoint) -> None:
    # §18.2.2: no rport, so the sent-by port, not the source port, receives the response.
    sender, listener = await UdpClient.open(), await UdpClient.open()
    try:
        sender.send(options(endpoint.port, local_port=listener.port, rport=False), endpoint.port)
        response = await listener.receive()
        assert response is not None and response.status == 200
        assert await sender.receive(timeout=0.3) is None
    finally:
        sender.close()
        listener.close()


@pytest.mark.asyncio
async def test_invite_gets_405_and_its_retransmission_the_same(
    endpoint: SipEndpoint, client: UdpClient
) -> None:
    invite = options(endpoint.port, local_port=client.port).replace(b"OPTIONS", b"INVITE")
    first = await client.request(invite, endpoint.port)
    assert first is not None and first.status == 405
    assert first.response.headers.get("allow") == "OPTIONS, ACK, CANCEL"
    again = await client.request(invite, endpoint.port)
    assert again is not None and again.data == first.data  # absorbed, the response resent
    request = parse_message(invite)
    assert isinstance(request, Request)
    ack = (
        invite.replace(b"INVITE sip", b"ACK sip")
        .replace(b"INVITE\r\n", b"ACK\r\n")
        .replace(
            b"To: <sip:pbx@127.0.0.1>",
            f"To: <sip:pbx@127.0.0.1>;tag={first.response.to_tag}".encode(),
        )
    )
    assert await client.request(ack, endpoint.port, timeout=0.3) is None


@pytest.mark.asyncio
async def test_options_over_tcp_and_keep_alive_pong(endpoint: SipEndpoint) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    local_port = writer.get_extra_info("sockname")[1]
    writer.write(b"\r\n\r\n" + options(endpoint.port, local_port=local_port, transport="TCP"))
    assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"SIP/2.0 200 OK")
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["ncl.dat", "mcl01.dat", "clerr.dat"])
async def test_tcp_framing_faults_close_the_connection(endpoint: SipEndpoint, name: str) -> None:
    endpoint.transports.incomplete_timeout = 0.5  # clerr: wait for the promised body, then close
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    writer.write(read_4475(name))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF: the server closed
    writer.close()
    # ... and the listener still serves.
    client = await UdpClient.open()
    try:
        reply = await client.request(options(endpoint.port, local_port=client.port), endpoint.port)
        assert reply is not None and reply.status == 200
    finally:
        client.close()


def _expected(data: bytes, expect: Expect, endpoint: SipEndpoint) -> set[int | None]:
    """What this endpoint must answer: the table's parse outcome, else the §8.2 verdict under
    the endpoint's policy (which serves OPTIONS only until calls land), else 200 or 481."""
    if expect.parse != PARSE:
        assert isinstance(expect.parse, frozenset)
        return set(expect.parse) | {None}  # a 400 with no usable Via cannot be sent: dropped
    try:
        message = parse_message(data)
    except SipParseError:  # pragma: no cover - the table says it parses
        raise
    if not isinstance(message, Request) or message.method == "ACK":
        return {None}
    if message.to_tag is not None:
        return {481}
    verdict = check_request(message, endpoint.policy)
    return {verdict.status if verdict else 200}


_FIRST_VIA = re.compile(rb"^(via|v)[ \t]*:", re.IGNORECASE | re.MULTILINE)


def with_rport(data: bytes) -> bytes:
    """Ask for the response at the source port (RFC 3581), as a NATed phone does.

    The files' Vias name hosts and ports that are not the test's socket, and §18.2.2 rightly
    sends responses there. `rport` goes in as the first parameter of the top Via, found at byte
    level (folded lines included) so everything else stays byte-exact.
    """
    match = _FIRST_VIA.search(data)
    if match is None:
        return data
    head_end = data.find(b"\r\n\r\n")
    semicolon = data.find(b";", match.end(), head_end if head_end >= 0 else len(data))
    next_field = re.search(rb"\r\n[^ \t]", data[match.end() :])
    field_end = match.end() + next_field.start() if next_field else len(data)
    if 0 <= semicolon < field_end:
        return data[: semicolon + 1] + b"rport;" + data[semicolon + 1 :]
    return data[:field_end] + b";rport" + data[field_end:]


CASES = [(n, read_4475(n), e) for n, e in sorted(RFC4475.items())] + [
    (n, read_5118(n), e) for n, e in sorted(RFC5118.items())
]


@pytest.mark.asyncio
async def test_torture_files_over_udp(client: UdpClient) -> None:
    # A fresh endpoint per file: the RFC's files reuse branches (escnull and regescrt share
    # branch, sent-by, CSeq and method), so one endpoint would rightly match the second as a
    # retransmission of the first.
    answered: dict[str, int | None] = {}
    for name, original, expect in CASES:
        endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=0))
        await endpoint.start()
        try:
            data = with_rport(original)
            reply = await client.request(data, endpoint.port, timeout=0.3)
            status = None if reply is None else reply.status
            answered[name] = status
            assert status in _expected(data, expect, endpoint), name
            probe = await client.request(
                options(endpoint.port, local_port=client.port), endpoint.port
            )
            assert probe is not None and probe.status == 200, f"no OPTIONS answer after {name}"
        finally:
            await endpoint.stop()
    # The ones the table fixes exactly, over the wire.
    assert answered["badvers.dat"] == 505
    assert answered["wsinv.dat"] == 481
    assert answered["via-received-param-with-delim"] == 481
    assert answered["bext01.dat"] == 420
    assert answered["unkscm.dat"] == 416
    assert answered["intmeth.dat"] == 501
    assert answered["esc02.dat"] == 501
    assert answered["zeromf.dat"] == 200
    assert answered["lwsdisp.dat"] == 200
    for response_file in ("scalarlg.dat", "bigcode.dat", "bcast.dat", "unreason.dat"):
        assert answered[response_file] is None


@pytest.mark.asyncio
async def test_one_endpoint_survives_repeated_replays(
    endpoint: SipEndpoint, client: UdpClient
) -> None:
    for _ in range(10):
        for _name, original, _expect in CASES:
            client.send(with_rport(original), endpoint.port)
            # Let the server read: a burst sent without yielding only overflows the kernel's
            # UDP buffer (datagrams dropped), which tests the OS, not the endpoint.
            await asyncio.sleep(0)
        client.send(read_4475("dblreq.dat") * 20, endpoint.port)
    # A fresh socket: the burst's answers (and the 405 retransmissions of INVITEs nobody
    # acknowledges) may have filled the first client's receive buffer.
    fresh = await UdpClient.open()
    try:
        probe = await fresh.request(options(endpoint.port, local_port=fresh.port), endpoint.port)
    finally:
        fresh.close()
    assert probe is not None and probe.status == 200
    # Retransmissions were absorbed: one transaction per distinct request, not per datagram.
    assert len(endpoint.layer) <= len(CASES) + 1
