"""The RFC 4475 / RFC 5118 torture messages and what this service must do with each.

Transcribed from ../shared/sip-torture/README.md. `parse` is the parser's outcome: "parse" or
the set of statuses the parser may raise with (None = drop). `core` is the application-level
answer where a sans-IO check decides it (uas.check_request); `later` says what a stateful
part must do: "asserted:" where test_torture.py checks it against the dialog set, the
transaction layer, SDP or digest; the rest is for the engine and registrar (issue 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TORTURE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "sip-torture"
RFC5118_DIR = TORTURE_DIR / "rfc5118"

PARSE = "parse"


@dataclass(frozen=True)
class Expect:
    parse: str | frozenset[int | None]
    core: int | None = None  # status from uas.check_request; None: passes the checks
    later: str = ""


def rejected(*statuses: int | None) -> frozenset[int | None]:
    return frozenset(statuses)


RFC4475: dict[str, Expect] = {
    # 3.1.1 valid
    "wsinv.dat": Expect(PARSE, later="asserted: 481 from Dialogs (To tag, no dialog)"),
    "intmeth.dat": Expect(PARSE, 501),
    "esc01.dat": Expect(PARSE, later="normal INVITE handling, e.g. 404"),
    "escnull.dat": Expect(PARSE, later="registrar: 401 first, then two distinct bindings"),
    "esc02.dat": Expect(PARSE, 501),
    "lwsdisp.dat": Expect(PARSE, later="200 to OPTIONS"),
    "longreq.dat": Expect(PARSE, later="normal INVITE handling"),
    "dblreq.dat": Expect(PARSE, later="asserted: exactly one transaction"),
    "semiuri.dat": Expect(PARSE, later="200 to OPTIONS"),
    "transports.dat": Expect(PARSE, later="200 to OPTIONS"),
    "mpart01.dat": Expect(PARSE, 405),
    "unreason.dat": Expect(PARSE, later="response without transaction: drop"),
    "noreason.dat": Expect(PARSE, later="response without transaction: drop"),
    # 3.1.2 invalid
    "badinv01.dat": Expect(rejected(400)),
    "clerr.dat": Expect(rejected(400), later="TCP: framer waits; transport closes on idle"),
    "ncl.dat": Expect(rejected(400, None), later="TCP: FramingError, close"),
    "scalar02.dat": Expect(rejected(400)),
    "scalarlg.dat": Expect(rejected(None)),
    "quotbal.dat": Expect(rejected(400)),
    "ltgtruri.dat": Expect(rejected(400)),
    "lwsruri.dat": Expect(rejected(400)),
    "lwsstart.dat": Expect(rejected(400)),
    "trws.dat": Expect(rejected(400)),
    "escruri.dat": Expect(rejected(400)),
    "baddate.dat": Expect(PARSE, later="Date ignored; normal INVITE handling"),
    "regbadct.dat": Expect(rejected(400)),
    "badaspec.dat": Expect(rejected(400)),
    "baddn.dat": Expect(rejected(400, None)),
    "badvers.dat": Expect(rejected(505)),
    "mismatch01.dat": Expect(rejected(400)),
    "mismatch02.dat": Expect(rejected(501, 400)),
    "bigcode.dat": Expect(rejected(None)),
    # 3.2 transaction layer
    "badbranch.dat": Expect(PARSE, later="asserted: RFC 2543 matching; engine: 200"),
    # 3.3 application layer
    "insuf.dat": Expect(rejected(400, None)),
    "unkscm.dat": Expect(PARSE, 416),
    "novelsc.dat": Expect(PARSE, 416),
    "unksm2.dat": Expect(PARSE, 400),
    "bext01.dat": Expect(PARSE, 420),
    "invut.dat": Expect(PARSE, 415),
    "regaut01.dat": Expect(PARSE, later="asserted: Digest challenge; registrar sends the 401"),
    "multi01.dat": Expect(rejected(400)),
    "mcl01.dat": Expect(rejected(400, None), later="TCP: FramingError, close"),
    "bcast.dat": Expect(PARSE, later="response without transaction: drop; never send to it"),
    "zeromf.dat": Expect(PARSE, later="200 to OPTIONS (endpoint ignores Max-Forwards 0)"),
    "cparam01.dat": Expect(PARSE, later="registrar: binding without unknownparam"),
    "cparam02.dat": Expect(PARSE, later="registrar: binding keeps ;unknownparam"),
    "regescrt.dat": Expect(PARSE, later="registrar: binding keeps ?Route=... verbatim"),
    "sdp01.dat": Expect(PARSE, 406),
    # 3.4 backward compatibility
    "inv2543.dat": Expect(PARSE, later="normal INVITE handling; body is the datagram's rest"),
    # unreferenced: must not crash
    "test.dat": Expect(rejected(400, None)),
}

RFC5118: dict[str, Expect] = {
    "ipv6-good": Expect(PARSE, later="registrar: 401/200"),
    "ipv6-bad": Expect(rejected(400)),
    "port-ambiguous": Expect(PARSE),
    "port-unambiguous": Expect(PARSE),
    "via-received-param-with-delim": Expect(PARSE, later="asserted: 481 from Dialogs"),
    "via-received-param-no-delim": Expect(PARSE, later="200 to OPTIONS"),
    "ipv6-in-sdp": Expect(PARSE, later="asserted: IN IP6 media address"),
    "mult-ip-in-header": Expect(PARSE, later="asserted: 481 from Dialogs"),
    "mult-ip-in-sdp": Expect(PARSE, later="asserted: per-stream IP4 and IP6"),
    "ipv4-mapped-ipv6": Expect(PARSE),
    # RFC 3261's ABNF bug: we tolerate the three-colon form (the README's other option: 400).
    "ipv6-bug-abnf-3-colons": Expect(PARSE),
    "ipv6-correct-abnf-2-colons": Expect(PARSE),
}


def read_4475(name: str) -> bytes:
    return (TORTURE_DIR / name).read_bytes()


def read_5118(name: str) -> bytes:
    """Put an RFC 5118 sample on the wire as its README says: LF -> CRLF, close the header
    section, and set Content-Length to the real body length."""
    raw = (RFC5118_DIR / name).read_bytes().replace(b"\r\n", b"\n")
    head, _sep, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if ln]
    fixed = [
        b"Content-Length: " + str(len(body.replace(b"\n", b"\r\n"))).encode()
        if ln.lower().startswith((b"content-length:", b"l:"))
        else ln
        for ln in lines
    ]
    return b"\r\n".join(fixed) + b"\r\n\r\n" + body.replace(b"\n", b"\r\n")
