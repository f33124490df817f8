"""ITU-T G.711 µ-law (PCMU) and A-law (PCMA) as numpy table lookups.

Bit-exact with the ITU-T G.191 Software Tools Library (`g711.c`: `ulaw_compress`,
`ulaw_expand`, `alaw_compress`, `alaw_expand`) fed with 16-bit PCM: µ-law keeps the 14 most
significant bits (`sample >> 2`, bias 33 = 0x84 >> 2), A-law the 13 most significant
(`sample >> 3`, even bits inverted with 0x55); decoding returns the G.191 values, which are
already on the 16-bit scale (µ-law ±32124, A-law ±32256 at full scale).

Negative samples take their magnitude as a one's complement (`~x`), as G.191 does, so -1 sits
next to 0 and the quantiser is exactly symmetric about -0.5. Sun's `g711.c` (sox, PulseAudio)
uses the two's complement (`-x`) for µ-law, which moves 127 negative decision levels by one
14-bit step; A-law agrees everywhere.

Every table is built once at import with vectorised numpy and frozen read-only; encoding and
decoding are one `ndarray.take` per frame. This module knows nothing about RTP, payload types
or SDP: `codec.py` registers these functions as PCMU and PCMA.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .frame import PCM

BytesLike: TypeAlias = bytes | bytearray | memoryview
WritableBuffer: TypeAlias = bytearray | memoryview | NDArray[np.uint8]

_INT16: Final = np.dtype(np.int16)


def _all_int16() -> NDArray[np.int32]:
    """The sample each encode-table index stands for: index i is the uint16 view of an int16."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _ones_complement_magnitude(x: NDArray[np.int32]) -> NDArray[np.int32]:
    # G.191: `x < 0 ? ~x : x`, i.e. |x| for x >= 0 and |x| - 1 below zero.
    return np.where(x < 0, ~x, x)


def _freeze(table: NDArray[np.generic]) -> None:
    table.flags.writeable = False


# --- µ-law (G.711 Table 2a; G.191 ulaw_compress / ulaw_expand) -------------------------------

# Lower bounds of µ-law segments 1..7 on the biased 14-bit magnitude (segment 0 is [33, 64)):
# the segment number is the count of bounds at or below the value.
_ULAW_SEGMENT_STARTS: Final = np.array([64 << e for e in range(7)], dtype=np.int32)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    x = _all_int16()
    biased = np.minimum((_ones_complement_magnitude(x) >> 2) + 33, 0x1FFF)
    segment = np.searchsorted(_ULAW_SEGMENT_STARTS, biased, side="right").astype(np.int32)
    mantissa = (biased >> (segment + 1)) & 0x0F
    # µ-law transmits the inverted segment and mantissa; the sign bit is 1 for x >= 0.
    code = 0x7F ^ ((segment << 4) | mantissa)
    table: NDArray[np.uint8] = (code | np.where(x >= 0, 0x80, 0)).astype(np.uint8)
    return table


def _build_ulaw_decode() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 8 << segment  # one quantisation step on the 16-bit scale
    magnitude = (0x80 << segment) + step * mantissa + step // 2 - 4 * 33
    return np.where(code < 0x80, -magnitude, magnitude).astype(np.int16)


# --- A-law (G.711 Table 1a; G.191 alaw_compress / alaw_expand) -------------------------------

# Lower bounds of A-law segments 1..7 on the 11-bit magnitude (segment 0 is [0, 16)).
_ALAW_SEGMENT_STARTS: Final = np.array([16 << e for e in range(7)], dtype=np.int32)


def _build_alaw_encode() -> NDArray[np.uint8]:
    x = _all_int16()
    magnitude = _ones_complement_magnitude(x) >> 4
    segment = np.searchsorted(_ALAW_SEGMENT_STARTS, magnitude, side="right").astype(np.int32)
    # Segments 0 and 1 share the finest step; above them the leading 1 is implicit (& 0x0F).
    mantissa = (magnitude >> np.maximum(segment - 1, 0)) & 0x0F
    code = (segment << 4) | mantissa | np.where(x >= 0, 0x80, 0)
    return (code ^ 0x55).astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32)
    toggled = (code ^ 0x55) & 0x7F
    segment = toggled >> 4
    mantissa = (toggled & 0x0F) + np.where(segment > 0, 16, 0)
    magnitude = ((mantissa << 4) + 8) << np.maximum(segment - 1, 0)
    table: NDArray[np.int16] = np.where(code > 0x7F, magnitude, -magnitude).astype(np.int16)
    return table


ULAW_ENCODE: Final[NDArray[np.uint8]] = _build_ulaw_encode()
"""µ-law code of every int16 sample, indexed by the sample's uint16 view (65536 entries)."""
ULAW_DECODE: Final[NDArray[np.int16]] = _build_ulaw_decode()
"""16-bit value of every µ-law code (256 entries)."""
ALAW_ENCODE: Final[NDArray[np.uint8]] = _build_alaw_encode()
"""A-law code of every int16 sample, indexed by the sample's uint16 view (65536 entries)."""
ALAW_DECODE: Final[NDArray[np.int16]] = _build_alaw_decode()
"""16-bit value of every A-law code (256 entries)."""

for _table in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    # Shared by every call in the process: a stray write would corrupt all audio.
    _freeze(_table)
del _table


# --- Frame functions ------------------------------------------------------------------------
#
# `take(..., mode="wrap")` on the int16 samples reads the table at the uint16 view without a
# `view()` call (a negative index wraps to 65536 + x), and `mode="clip"` on uint8 codes, whose
# indices are always in range, skips numpy's bounds-error path: both measured ~40 % faster
# per 160-sample frame than plain fancy indexing.


def _check_pcm(pcm: PCM) -> None:
    # A float or int32 array would index the table with garbage; big-endian int16 too.
    if pcm.dtype != _INT16:
        raise TypeError(f"G.711 encodes native int16 samples, not {pcm.dtype}")


def _codes(data: BytesLike | NDArray[np.uint8]) -> NDArray[np.uint8]:
    return data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: PCM) -> bytes:
    """Encode int16 samples (any length) to µ-law bytes, one byte per sample."""
    _check_pcm(pcm)
    return ULAW_ENCODE.take(pcm, mode="wrap").tobytes()


def ulaw_encode_into(pcm: PCM, out: WritableBuffer) -> int:
    """Encode into a caller's buffer (e.g. the payload of a pre-built RTP packet).

    `out` must hold exactly `len(pcm)` bytes; returns the number of bytes written. Fastest
    with a uint8 ndarray view made once per stream (`np.frombuffer(packet, np.uint8)[12:]`);
    a bytearray or memoryview is wrapped anew on every call (~0.3 µs).
    """
    _check_pcm(pcm)
    ULAW_ENCODE.take(pcm, mode="wrap", out=_codes(out))
    return len(pcm)


def ulaw_decode(data: BytesLike, out: PCM | None = None) -> PCM:
    """Decode µ-law bytes (any length) to int16 samples, into `out` when given."""
    return ULAW_DECODE.take(_codes(data), mode="clip", out=out)


def alaw_encode(pcm: PCM) -> bytes:
    """Encode int16 samples (any length) to A-law bytes, one byte per sample."""
    _check_pcm(pcm)
    return ALAW_ENCODE.take(pcm, mode="wrap").tobytes()


def alaw_encode_into(pcm: PCM, out: WritableBuffer) -> int:
    """Encode into a caller's buffer of exactly `len(pcm)` bytes; returns the bytes written."""
    _check_pcm(pcm)
    ALAW_ENCODE.take(pcm, mode="wrap", out=_codes(out))
    return len(pcm)


def alaw_decode(data: BytesLike, out: PCM | None = None) -> PCM:
    """Decode A-law bytes (any length) to int16 samples, into `out` when given."""
    return ALAW_DECODE.take(_codes(data), mode="clip", out=out)
