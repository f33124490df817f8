"""Header fields: names, compact forms, multi-value splitting and the ordered header list.

Values are kept verbatim (after unfolding) so unknown headers round-trip untouched; typed views
(Via, name-addr, CSeq …) are parsed from them on demand by `message.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import MessageTooLarge, SipParseError

# RFC 3261 §7.3.3 plus the compact forms later RFCs registered (3265, 3515, 3892, 4028, 3841).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
}

# Canonical spelling used when we build messages ourselves.
CANONICAL_NAMES: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}

# Headers whose grammar is `#(element)`: a comma separates values (RFC 3261 §7.3.1).
# Authorization-style headers and Date are NOT here: commas occur inside their single value.
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-language",
        "allow-events",
        "alert-info",
        "call-info",
        "error-info",
        "in-reply-to",
        "warning",
        "path",
        "service-route",
        "p-asserted-identity",
        "p-preferred-identity",
        "history-info",
        "reason",
    }
)

# RFC 3261 §7.3.1 token characters; header names must be tokens.
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN_CHARS for c in text)


def normalize_name(name: str) -> str:
    """The lookup key of a header name: lower case, compact form expanded."""
    key = name.lower()
    return COMPACT_FORMS.get(key, key)


def canonical_name(name: str) -> str:
    key = normalize_name(name)
    return CANONICAL_NAMES.get(key) or "-".join(part.capitalize() for part in key.split("-"))


def split_list(value: str, max_values: int = 128) -> list[str]:
    """Split a `#element` header value at top-level commas.

    Commas inside quoted strings (with backslash escapes) and inside <...> do not split.
    Empty elements are kept so callers can reject them where the grammar forbids them.
    """
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            parts.append(value[start:i].strip())
            if len(parts) >= max_values:
                raise MessageTooLarge("too many values in one header field")
            start = i + 1
        i += 1
    if in_quotes:
        raise SipParseError("unterminated quoted string")
    parts.append(value[start:].strip())
    return parts


class Headers:
    """Ordered header fields; lookups are case-insensitive and understand compact forms.

    Each field keeps the name as received, so serialisation reproduces the peer's spelling,
    next to its lookup key, computed once when the field is added.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = [(normalize_name(n), n, v) for n, v in fields]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize_name(name)
        return any(k == key for k, _, _ in self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        copied = Headers()
        copied._fields = list(self._fields)
        return copied

    def entries(self) -> Iterator[tuple[str, str, str]]:
        """(lookup key, name as written, value) of every field, in order."""
        return iter(self._fields)

    def lookup_keys(self) -> list[str]:
        """The lookup key of every field, in order (compact forms expanded, lower case)."""
        return [k for k, _, _ in self._fields]

    def fields(self, name: str) -> list[str]:
        """Every field value of `name`, one entry per header line."""
        key = normalize_name(name)
        return [v for k, _, v in self._fields if k == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field value of `name`."""
        key = normalize_name(name)
        for k, _, v in self._fields:
            if k == key:
                return v
        return default

    def values(self, name: str, max_values: int = 128) -> list[str]:
        """All values of a list header, split at top-level commas across every field line."""
        out: list[str] = []
        for field in self.fields(name):
            out.extend(split_list(field, max_values))
            if len(out) > max_values:
                raise MessageTooLarge(f"too many {name} values")
        return out

    def add(self, name: str, value: str) -> None:
        self._fields.append((normalize_name(name), name, value))

    def prepend(self, name: str, value: str) -> None:
        self._fields.insert(0, (normalize_name(name), name, value))

    def remove(self, name: str) -> None:
        key = normalize_name(name)
        self._fields = [f for f in self._fields if f[0] != key]

    def replace_first_value(self, name: str, value: str) -> None:
        """Replace the first value of a list header (e.g. the top Via), leaving every other
        value and field line as it was. Adds the field if there is none."""
        key = normalize_name(name)
        for i, (k, n, v) in enumerate(self._fields):
            if k == key:
                rest = split_list(v)[1:]
                self._fields[i] = (k, n, ", ".join([value, *rest]))
                return
        self.add(name, value)

    def set(self, name: str, value: str) -> None:
        """Replace all fields of `name` by one, kept at the position of the first."""
        key = normalize_name(name)
        out: list[tuple[str, str, str]] = []
        placed = False
        for k, n, v in self._fields:
            if k == key:
                if not placed:
                    out.append((k, n, value))
                    placed = True
            else:
                out.append((k, n, v))
        if not placed:
            out.append((key, name, value))
        self._fields = out
