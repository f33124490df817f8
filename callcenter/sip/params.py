"""Header parameters (`;name[=value]`) as they follow name-addr, Via and similar values.

    generic-param = token [ EQUAL gen-value ]
    gen-value     = token / host / quoted-string

Values keep their wire form (quotes included) so serialisation is exact; names are stored
lower-cased because parameter names compare case-insensitively.
"""

from __future__ import annotations

from .errors import SipParseError
from .headers import TOKEN_CHARS

Params = tuple[tuple[str, str | None], ...]

# host characters may appear in gen-value besides token characters (IPv6 references).
_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")


def scan_quoted(text: str, start: int) -> int:
    """Index just past the quoted-string that opens at `start` (text[start] == '"')."""
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated quoted string")


def parse_params(text: str, max_params: int = 64) -> Params:
    """Parse `;a=b;c` (text starts at the first ';' or is empty)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] != ";":
            raise SipParseError(f"expected ';' in parameters, got {text[i : i + 16]!r}")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        start = i
        while i < n and text[i] in TOKEN_CHARS:
            i += 1
        name = text[start:i]
        if not name:
            raise SipParseError("empty parameter name")
        while i < n and text[i] in " \t":
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                end = scan_quoted(text, i)
                value = text[i:end]
                i = end
            else:
                start = i
                while i < n and text[i] in _VALUE_CHARS:
                    i += 1
                value = text[start:i]
                if not value:
                    raise SipParseError(f"empty value for parameter {name!r}")
            while i < n and text[i] in " \t":
                i += 1
        out.append((name.lower(), value))
        if len(out) > max_params:
            raise SipParseError("too many parameters")
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v
    return None


def has_param(params: Params, name: str) -> bool:
    return any(k == name for k, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    kept = tuple((k, v) for k, v in params if k != name)
    return (*kept, (name, value))


def unquote(value: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved; tokens pass through."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        i = 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return value


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
