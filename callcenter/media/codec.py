"""Codecs as registered descriptors: what SDP negotiates and what the engine calls per frame.

A `Codec` carries everything the rest of the system asks about an audio format — its RTP
encoding name, static payload type, clock rate, frame size — and the functions that convert
between payload bytes and PCM frames. Callers look codecs up in a `CodecRegistry` by rtpmap
name or static payload type and then only use the descriptor, so adding a codec is one
`register` call and nothing anywhere branches on codec names (DESIGN convention 7).

This module knows nothing about SDP text, RTP headers or sockets; dynamic payload type numbers
belong to a session's offer/answer, not to the codec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from . import g711
from .frame import FRAME_MS, PCM, SAMPLE_RATE, MediaError
from .g711 import BytesLike, WritableBuffer

# RFC 4566 §9: encoding names in a=rtpmap are tokens; '/' separates the rate and channels.
_ENCODING_NAME = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_MAX_STATIC_PT: Final = 95  # RFC 3551 §6: 96-127 are dynamic and belong to a session


class CodecError(MediaError, ValueError):
    """A codec descriptor, registration or payload is invalid."""


class Encoder(Protocol):
    def __call__(self, pcm: PCM, /) -> bytes: ...


class EncoderInto(Protocol):
    def __call__(self, pcm: PCM, out: WritableBuffer, /) -> int: ...


class Decoder(Protocol):
    def __call__(self, data: BytesLike, /, out: PCM | None = None) -> PCM: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """An audio codec as SDP names it and as the engine uses it.

    `sample_rate` is the PCM rate the codec consumes and produces; `clock_rate` is the RTP
    timestamp rate in a=rtpmap (they differ for G.722: 16000 vs 8000). `frame_bytes` is the
    payload size of one `FRAME_MS` frame. `encode` and `decode` work on any whole number of
    samples, so a peer's 30 ms packets decode as well as 20 ms ones.
    """

    name: str
    payload_type: int | None
    clock_rate: int
    sample_rate: int
    channels: int
    frame_bytes: int
    encode: Encoder
    encode_into: EncoderInto
    decode: Decoder

    def __post_init__(self) -> None:
        if not _ENCODING_NAME.fullmatch(self.name):
            raise CodecError(f"encoding name {self.name!r} is not an RFC 4566 token")
        if self.payload_type is not None and not 0 <= self.payload_type <= _MAX_STATIC_PT:
            raise CodecError(f"{self.name}: static payload type {self.payload_type} not in 0-95")
        if self.clock_rate <= 0 or self.sample_rate <= 0 or self.channels <= 0:
            raise CodecError(f"{self.name}: rates and channels must be positive")
        if self.frame_bytes <= 0:
            raise CodecError(f"{self.name}: frame_bytes must be positive")

    @property
    def rtpmap(self) -> str:
        """The a=rtpmap value after the payload type: ``PCMU/8000``, ``L16/8000/2``."""
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{channels}"

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp increment per frame (160 for 20 ms at an 8000 Hz clock)."""
        return self.clock_rate * FRAME_MS // 1000

    @property
    def samples_per_frame(self) -> int:
        """PCM samples per channel in one frame."""
        return self.sample_rate * FRAME_MS // 1000


def _key(name: str, clock_rate: int, channels: int) -> tuple[str, int, int]:
    # RFC 4855 §3: media subtype names are case-insensitive ("pcmu" == "PCMU").
    return (name.upper(), clock_rate, channels)


class CodecRegistry:
    """The codecs a node supports, in preference order (the order they were registered).

    Lookups return None for an unknown codec, because SDP negotiation skips what it cannot
    use rather than failing.
    """

    __slots__ = ("_by_key", "_by_pt", "_codecs")

    def __init__(self, codecs: Iterable[Codec] = ()) -> None:
        self._codecs: list[Codec] = []
        self._by_key: dict[tuple[str, int, int], Codec] = {}
        self._by_pt: dict[int, Codec] = {}
        for codec in codecs:
            self.register(codec)

    def register(self, codec: Codec) -> Codec:
        """Add `codec` at the lowest preference; returns it so modules can register inline."""
        key = _key(codec.name, codec.clock_rate, codec.channels)
        if key in self._by_key:
            raise CodecError(f"codec {codec.rtpmap} is already registered")
        if codec.payload_type is not None and codec.payload_type in self._by_pt:
            other = self._by_pt[codec.payload_type]
            raise CodecError(f"payload type {codec.payload_type} already names {other.rtpmap}")
        self._codecs.append(codec)
        self._by_key[key] = codec
        if codec.payload_type is not None:
            self._by_pt[codec.payload_type] = codec
        return codec

    def by_name(self, name: str, clock_rate: int, channels: int = 1) -> Codec | None:
        """The codec an a=rtpmap line names (case-insensitive), or None."""
        return self._by_key.get(_key(name, clock_rate, channels))

    def by_payload_type(self, payload_type: int) -> Codec | None:
        """The codec with this static payload type, or None (dynamic types are per session)."""
        return self._by_pt.get(payload_type)

    def __iter__(self) -> Iterator[Codec]:
        return iter(tuple(self._codecs))

    def __len__(self) -> int:
        return len(self._codecs)

    def __contains__(self, codec: object) -> bool:
        return codec in self._codecs

    def __repr__(self) -> str:
        return f"CodecRegistry([{', '.join(c.rtpmap for c in self._codecs)}])"


# --- L16: raw big-endian PCM (RFC 3551 §4.5.11), for tests, recording and lossless links --

_L16_WIRE: Final = np.dtype(">i2")  # network byte order


def _check_l16(pcm: PCM) -> None:
    if pcm.dtype != np.int16:
        raise TypeError(f"L16 encodes native int16 samples, not {pcm.dtype}")


def _l16_encode(pcm: PCM, /) -> bytes:
    _check_l16(pcm)
    return pcm.astype(_L16_WIRE, copy=False).tobytes()


def _l16_encode_into(pcm: PCM, out: WritableBuffer, /) -> int:
    _check_l16(pcm)
    target = out if isinstance(out, np.ndarray) else np.frombuffer(out, dtype=np.uint8)
    np.copyto(target.view(_L16_WIRE), pcm, casting="same_kind")
    return 2 * len(pcm)


def _l16_decode(data: BytesLike, /, out: PCM | None = None) -> PCM:
    if len(data) % 2:
        raise CodecError(f"L16 payload of {len(data)} bytes is not whole samples")
    wire = np.frombuffer(data, dtype=_L16_WIRE)
    if out is None:
        return wire.astype(np.int16)
    np.copyto(out, wire)
    return out


# --- The descriptors ------------------------------------------------------------------------

_G711_FRAME_BYTES: Final = SAMPLE_RATE * FRAME_MS // 1000  # one byte per sample

PCMU: Final = Codec(
    name="PCMU",
    payload_type=0,
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    frame_bytes=_G711_FRAME_BYTES,
    encode=g711.ulaw_encode,
    encode_into=g711.ulaw_encode_into,
    decode=g711.ulaw_decode,
)
"""G.711 µ-law, RTP/AVP static payload type 0."""

PCMA: Final = Codec(
    name="PCMA",
    payload_type=8,
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    frame_bytes=_G711_FRAME_BYTES,
    encode=g711.alaw_encode,
    encode_into=g711.alaw_encode_into,
    decode=g711.alaw_decode,
)
"""G.711 A-law, RTP/AVP static payload type 8."""

L16_8000: Final = Codec(
    name="L16",
    payload_type=None,  # RFC 3551's static 10/11 are 44.1 kHz; 8 kHz L16 needs a dynamic PT
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    frame_bytes=2 * _G711_FRAME_BYTES,
    encode=_l16_encode,
    encode_into=_l16_encode_into,
    decode=_l16_decode,
)
"""Linear 16-bit big-endian PCM at 8 kHz mono (dynamic payload type)."""


def default_registry() -> CodecRegistry:
    """A new registry of what every SIP peer supports: PCMU preferred, then PCMA.

    A fresh registry per call, so one engine (or test) registering a codec never changes
    another's offer. L16 is left out: it is not offered to phones by default.
    """
    return CodecRegistry((PCMU, PCMA))
