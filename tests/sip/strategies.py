"""Hypothesis strategies that build well-formed SIP messages from their parts."""

from __future__ import annotations

from hypothesis import strategies as st

from callcenter.sip import Headers, Request, Response, SipUri
from callcenter.sip.status import REASON_PHRASES

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN = ALNUM + "-.!%*_+`'~"

tokens = st.text(TOKEN, min_size=1, max_size=12).filter(lambda t: "%" not in t)
labels = st.text(ALNUM, min_size=1, max_size=10)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda g: "[" + ":".join(f"{x:x}" for x in g) + "]"
)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)
escaped_users = st.text(ALNUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=16) | st.builds(
    lambda a, b: f"{a}%{b:02X}", labels, st.integers(0, 255)
)
uri_params = st.lists(
    st.tuples(labels.map(str.lower), st.none() | labels), max_size=4, unique_by=lambda p: p[0]
).map(tuple)

sip_uris = st.builds(
    SipUri,
    host=hosts,
    user=st.none() | escaped_users,
    port=ports,
    params=uri_params,
    scheme=st.sampled_from(["sip", "sips"]),
)

methods = st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"]) | (
    st.text(ALNUM, min_size=1, max_size=10).map(str.upper)
)
display_names = (
    st.none() | labels | st.text(ALNUM + " ,;:<>@", max_size=12).map(lambda t: '"' + t + '"')
)


@st.composite
def name_addrs(draw: st.DrawFn, tag: bool = True) -> str:
    display = draw(display_names)
    uri = draw(sip_uris)
    text = f"{display} <{uri}>" if display else f"<{uri}>"
    if tag and draw(st.booleans()):
        text += f";tag={draw(labels)}"
    return text


@st.composite
def vias(draw: st.DrawFn) -> str:
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "SCTP"]))
    host = draw(hosts)
    port = draw(ports)
    sent_by = host if port is None else f"{host}:{port}"
    text = f"SIP/2.0/{transport} {sent_by};branch=z9hG4bK{draw(labels)}"
    if draw(st.booleans()):
        text += ";rport"
    return text


extension_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)


@st.composite
def header_lists(draw: st.DrawFn, method: str) -> Headers:
    headers = Headers()
    for _ in range(draw(st.integers(1, 3))):
        headers.add(draw(st.sampled_from(["Via", "v"])), draw(vias()))
    headers.add("From", draw(name_addrs()))
    headers.add(draw(st.sampled_from(["To", "t"])), draw(name_addrs()))
    headers.add(draw(st.sampled_from(["Call-ID", "i"])), draw(labels) + "@" + draw(hostnames))
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    if draw(st.booleans()):
        headers.add("Max-Forwards", str(draw(st.integers(0, 255))))
    for _ in range(draw(st.integers(0, 2))):
        headers.add("Contact", draw(name_addrs(tag=False)))
    for _ in range(draw(st.integers(0, 3))):
        headers.add("X-" + draw(tokens), draw(extension_values))
    return headers


bodies = st.binary(max_size=300)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(methods)
    headers = draw(header_lists(method))
    body = draw(bodies)
    headers.add("Content-Length", str(len(body)))
    return Request(method, draw(sip_uris), headers, body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    status = draw(st.sampled_from(sorted(REASON_PHRASES)) | st.integers(100, 699))
    reason = draw(st.text(ALNUM + " ", max_size=20).map(str.strip))
    headers = draw(header_lists(draw(methods)))
    body = draw(bodies)
    headers.add("Content-Length", str(len(body)))
    return Response(status, reason, headers, body)
