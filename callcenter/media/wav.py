"""RIFF/WAVE parsing and building: bytes in, samples out, and back. No file I/O.

Reads what real tools write — PCM 8/16/24/32-bit integer and 32/64-bit float, G.711 µ-law
(format 7) and A-law (format 6), plain or WAVE_FORMAT_EXTENSIBLE headers, any channel count up
to `MAX_CHANNELS` — and converts it to int16. Chunks it does not need (LIST, fact, cue, id3 …)
are skipped, with the RIFF pad byte after an odd-sized chunk, or without it for the writers
that forget it. A data chunk whose size runs past the end (a streamed or truncated file) is
cut to the bytes present. Everything else malformed raises `WavError`, and every size is
checked before it is used.

`encode_wav` writes the canonical 44-byte header with 16-bit PCM, the format recordings use.
Reading files, caching prompts and choosing paths belong to the engine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import g711
from .frame import PCM, MediaError
from .resample import MAX_RATE, MIN_RATE, to_8k_mono

MAX_WAV_BYTES: Final = 256 << 20
"""Default bound on input size: about 45 minutes of 48 kHz stereo 16-bit, far above a prompt."""

MAX_CHANNELS: Final = 8
MAX_CHUNKS: Final = 1024

# Format tags (RFC 2361, mmreg.h).
WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_ALAW: Final = 0x0006
WAVE_FORMAT_MULAW: Final = 0x0007
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE

# KSDATAFORMAT_SUBTYPE_* GUIDs are the format tag followed by these 14 bytes (ksmedia.h).
_SUBFORMAT_GUID_TAIL: Final = bytes.fromhex("0000 0000 1000 8000 00aa 0038 9b71")

# Container sizes in bytes that each format may use.
_CONTAINERS: Final[dict[int, frozenset[int]]] = {
    WAVE_FORMAT_PCM: frozenset({1, 2, 3, 4}),
    WAVE_FORMAT_IEEE_FLOAT: frozenset({4, 8}),
    WAVE_FORMAT_ALAW: frozenset({1}),
    WAVE_FORMAT_MULAW: frozenset({1}),
}

_CHUNK_HEADER: Final = struct.Struct("<4sI")
_FMT: Final = struct.Struct("<HHIIHH")  # tag, channels, rate, byte rate, block align, bits
_FMT_EXTENSIBLE: Final = struct.Struct("<HHI16s")  # cbSize, valid bits, channel mask, GUID


class WavError(MediaError, ValueError):
    """The bytes are not a WAV file this module can read, or the samples cannot be written."""


class DecodedWav(NamedTuple):
    """Samples as int16: 1-D for mono, `(frames, channels)` otherwise."""

    samples: PCM
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int  # the real format: an EXTENSIBLE header is resolved to its sub-format
    channels: int
    sample_rate: int
    container: int  # bytes per sample of one channel


def _plausible_id(chunk_id: bytes) -> bool:
    # RIFF chunk ids are four printable ASCII characters (space-padded: "fmt ").
    return len(chunk_id) == 4 and all(0x20 <= b <= 0x7E for b in chunk_id)


def _find_chunks(data: bytes | bytearray | memoryview, end: int) -> tuple[memoryview, memoryview]:
    """The bodies of the fmt and data chunks, walking the chunks after the RIFF header."""
    view = memoryview(data)
    fmt: memoryview | None = None
    pos = 12
    for _ in range(MAX_CHUNKS):
        if pos + _CHUNK_HEADER.size > end:
            break
        chunk_id, size = _CHUNK_HEADER.unpack_from(view, pos)
        if not _plausible_id(chunk_id):
            raise WavError(f"malformed chunk id {chunk_id!r} at offset {pos}")
        body, body_end = pos + _CHUNK_HEADER.size, pos + _CHUNK_HEADER.size + size
        if chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before the fmt chunk")
            # Streamed writers leave a placeholder size; a cut download loses the tail. The
            # samples present are still good, so keep them.
            return fmt, view[body : min(body_end, end)]
        if body_end > end:
            raise WavError(f"{chunk_id.decode('ascii')!r} chunk runs past the end of the file")
        if chunk_id == b"fmt ":
            if fmt is not None:
                raise WavError("more than one fmt chunk")
            fmt = view[body:body_end]
        pos = body_end
        if size % 2:
            # RIFF pads odd-sized chunks to an even length; some writers forget the pad byte.
            padded_id = bytes(view[pos + 1 : pos + 5])
            if _plausible_id(padded_id) or not _plausible_id(bytes(view[pos : pos + 4])):
                pos += 1
    else:
        raise WavError(f"more than {MAX_CHUNKS} chunks")
    raise WavError("no fmt chunk" if fmt is None else "no data chunk")


def _parse_fmt(body: memoryview) -> _Format:
    if len(body) < _FMT.size:
        raise WavError(f"fmt chunk of {len(body)} bytes is too short")
    tag, channels, rate, _byte_rate, block_align, bits = _FMT.unpack_from(body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < _FMT.size + _FMT_EXTENSIBLE.size:
            raise WavError("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        _cb_size, _valid_bits, _mask, guid = _FMT_EXTENSIBLE.unpack_from(body, _FMT.size)
        if guid[2:] != _SUBFORMAT_GUID_TAIL:
            raise WavError(f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format {guid.hex()}")
        tag = int.from_bytes(guid[:2], "little")
    # The byte rate is derived data that some writers get wrong, so it is never trusted.
    if tag not in _CONTAINERS:
        raise WavError(f"unsupported WAV format tag 0x{tag:04x} (only PCM, float and G.711)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"{channels} channels is outside 1-{MAX_CHANNELS}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    container, remainder = divmod(block_align, channels)
    if remainder or container not in _CONTAINERS[tag]:
        raise WavError(
            f"block align {block_align} does not fit {channels} channels of format 0x{tag:04x}"
        )
    if not 0 < bits <= 8 * container:
        raise WavError(f"{bits} bits per sample do not fit a {container}-byte container")
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits != 8 * container:
        raise WavError(f"float samples of {bits} bits in {container} bytes")
    return _Format(tag=tag, channels=channels, sample_rate=rate, container=container)


def _round_to_int16(left_justified: NDArray[np.int32]) -> PCM:
    """Round int32 samples (the value in the top bits) to 16 bits, half up, saturating.

    Same arithmetic as sox's 32-bit to 16-bit conversion without dither, done in int32 so a
    long file needs no int64 copy: floor(v / 65536 + 1/2) = (v >> 16) + bit 15 of v.
    """
    rounded = (left_justified >> 16) + ((left_justified >> 15) & 1)
    return np.minimum(rounded, 32767).astype(np.int16)


def _to_int16(raw: memoryview, fmt: _Format) -> PCM:
    if fmt.tag == WAVE_FORMAT_MULAW:
        return g711.ulaw_decode(raw)
    if fmt.tag == WAVE_FORMAT_ALAW:
        return g711.alaw_decode(raw)
    if fmt.tag == WAVE_FORMAT_IEEE_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if fmt.container == 4 else "<f8")
        scaled = np.nan_to_num(floats.astype(np.float64) * 32768.0)
        return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)
    if fmt.container == 1:
        # 8-bit WAV is unsigned with 128 as zero.
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt.container == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if fmt.container == 4:
        return _round_to_int16(np.frombuffer(raw, dtype="<i4").astype(np.int32))
    # 24-bit: place the three bytes in the top of a little-endian int32 word.
    words = np.zeros((len(raw) // 3, 4), dtype=np.uint8)
    words[:, 1:] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
    return _round_to_int16(words.view("<i4").reshape(-1).astype(np.int32))


def decode_wav(
    data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_WAV_BYTES
) -> DecodedWav:
    """Parse a RIFF/WAVE file into int16 samples, its sample rate and channel count."""
    if len(data) > max_bytes:
        raise WavError(f"WAV of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if len(data) < 12:
        raise WavError("too short for a RIFF/WAVE header")
    magic, _riff_size = _CHUNK_HEADER.unpack_from(data)
    if magic in (b"RF64", b"RIFX"):
        raise WavError(f"{magic.decode('ascii')} (64-bit or big-endian RIFF) is not supported")
    if magic != b"RIFF":
        raise WavError(f"not a RIFF/WAVE file (starts with {magic!r})")
    if bytes(data[8:12]) != b"WAVE":
        raise WavError(f"RIFF form {bytes(data[8:12])!r} is not WAVE")
    # The RIFF size is not trusted: streamed writers (sox, ffmpeg and espeak-ng to a pipe)
    # leave 0x7FFFF0xx or 0xFFFFFFFF, others write 0. The walk ends at the data chunk anyway.
    fmt_body, raw = _find_chunks(data, len(data))
    fmt = _parse_fmt(fmt_body)
    frame_bytes = fmt.container * fmt.channels
    # A partial last frame (a cut file) is dropped rather than refused.
    raw = raw[: len(raw) - len(raw) % frame_bytes]
    samples = _to_int16(raw, fmt)
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels)
    return DecodedWav(samples, fmt.sample_rate, fmt.channels)


def load_prompt(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_WAV_BYTES) -> PCM:
    """Any WAV this module reads, as 8 kHz mono int16 ready to cut into frames."""
    wav = decode_wav(data, max_bytes=max_bytes)
    return to_8k_mono(wav.samples, wav.sample_rate)


def encode_wav(samples: PCM, sample_rate: int, channels: int = 1) -> bytes:
    """Build a 16-bit PCM WAV from int16 samples: 1-D (mono or interleaved) or 2-D frames.

    The header is the canonical 44 bytes (RIFF, a 16-byte fmt chunk, data), which every tool
    reads; `decode_wav(encode_wav(x, r, c))` gives back the same samples, rate and channels.
    """
    if samples.dtype != np.int16:
        raise WavError(f"encode_wav takes int16 samples, not {samples.dtype}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"{channels} channels is outside 1-{MAX_CHANNELS}")
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise WavError(f"sample rate {sample_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if samples.ndim == 2 and samples.shape[1] != channels:
        raise WavError(f"samples have {samples.shape[1]} channels, not {channels}")
    if samples.ndim not in (1, 2) or samples.size % channels:
        raise WavError(f"samples of shape {samples.shape} are not whole {channels}-channel frames")
    payload = samples.astype("<i2", copy=False).tobytes()
    if len(payload) > 0xFFFFFFFF - 36:
        raise WavError("too many samples for a RIFF file (4 GiB)")
    block_align = 2 * channels
    header = (
        _CHUNK_HEADER.pack(b"RIFF", 36 + len(payload))
        + b"WAVE"
        + _CHUNK_HEADER.pack(b"fmt ", _FMT.size)
        + _FMT.pack(
            WAVE_FORMAT_PCM, channels, sample_rate, sample_rate * block_align, block_align, 16
        )
        + _CHUNK_HEADER.pack(b"data", len(payload))
    )
    return header + payload
