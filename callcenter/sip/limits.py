"""Hard bounds applied before any parsing work, so hostile input costs bounded time and memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_message_size: int = 64 * 1024
    max_headers: int = 256
    max_header_line: int = 16 * 1024
    max_start_line: int = 8 * 1024
    # A request may legally cross Max-Forwards (70) hops, each adding a Via.
    max_vias: int = 70
    max_values_per_header: int = 128
    max_params: int = 64
    max_cseq: int = 2**31 - 1


DEFAULT_LIMITS = Limits()


def parse_decimal(text: str, max_digits: int = 10) -> int | None:
    """`text` as an integer when it is 1 to `max_digits` ASCII digits, else None.

    Bounding the length before int() keeps the cost constant and inside Python's limit on
    integer-string conversion (4,300 digits), which would otherwise raise ValueError.
    """
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
