"""Write the fuzz corpus seeds: every target gets inputs shaped like what it parses.

Selector byte (first byte of an input, see fuzz_sip.run_one): 0 datagram parse, 1 stream-body
parse, 2 stream framer, 3 SDP, 4 digest header values. Sources: the RFC 4475 torture files
(../shared) and the golden captures in tests/data/sip.
"""

from __future__ import annotations

import sys
from pathlib import Path

from callcenter.sip import SipParseError, parse_message

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT.parent / "shared" / "sip-torture").glob("*.dat"))]
SOURCES += sorted((ROOT / "tests" / "data" / "sip").glob("*.sip"))
AUTH_HEADERS = ("authorization", "www-authenticate", "proxy-authorization", "proxy-authenticate")


def main(corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in SOURCES:
        data = path.read_bytes()
        for selector in (0, 1, 2):
            (corpus / f"{selector}-{path.name}").write_bytes(bytes([selector]) + data)
            count += 1
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        if message.body.startswith(b"v=0"):
            (corpus / f"3-{path.name}").write_bytes(b"\x03" + message.body)
            count += 1
        for i, (name, value) in enumerate(message.headers):
            if name.lower() in AUTH_HEADERS:
                (corpus / f"4-{i}-{path.name}").write_bytes(b"\x04" + value.encode())
                count += 1
    print(f"{count} seeds in {corpus}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
