"""G.711 tables against a scalar G.191 reference, the standard's values, and sox."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from callcenter.media import g711
from callcenter.media.frame import SAMPLES_PER_FRAME
from callcenter.media.wav import encode_wav

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)

# --- Scalar reference: ITU-T G.191 STL g711.c, one sample at a time --------------------------
#
# Transcribed statement by statement from ulaw_compress / ulaw_expand / alaw_compress /
# alaw_expand, which take 16-bit left-justified samples (14 significant bits for µ-law, 13 for
# A-law) and return 16-bit values. C's `short` arithmetic is reproduced with Python ints: `~`
# and `>>` on negative ints behave like two's complement arithmetic shifts.


def ref_ulaw_compress(sample: int) -> int:
    # One's complement of negative samples; 33 is the µ-law bias (0x84 on the 16-bit scale).
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x0080
    return code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x0080 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(sample: int) -> int:
    ix = (~sample) >> 4 if sample < 0 else sample >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x0055) & 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def test_encode_tables_match_the_reference_for_every_sample() -> None:
    samples = ALL_SAMPLES.tolist()
    ulaw = np.array([ref_ulaw_compress(s) for s in samples], dtype=np.uint8)
    alaw = np.array([ref_alaw_compress(s) for s in samples], dtype=np.uint8)
    np.testing.assert_array_equal(g711.ULAW_ENCODE[ALL_SAMPLES.view(np.uint16)], ulaw)
    np.testing.assert_array_equal(g711.ALAW_ENCODE[ALL_SAMPLES.view(np.uint16)], alaw)
    # And through the frame functions, which index the table differently.
    assert g711.ulaw_encode(ALL_SAMPLES) == ulaw.tobytes()
    assert g711.alaw_encode(ALL_SAMPLES) == alaw.tobytes()


def test_decode_tables_match_the_reference_for_every_code() -> None:
    codes = ALL_CODES.tolist()
    np.testing.assert_array_equal(g711.ULAW_DECODE, [ref_ulaw_expand(c) for c in codes])
    np.testing.assert_array_equal(g711.ALAW_DECODE, [ref_alaw_expand(c) for c in codes])
    np.testing.assert_array_equal(g711.ulaw_decode(ALL_CODES.tobytes()), g711.ULAW_DECODE)
    np.testing.assert_array_equal(g711.alaw_decode(ALL_CODES.tobytes()), g711.ALAW_DECODE)


@pytest.mark.parametrize(
    ("table", "code", "value"),
    [
        # µ-law: all bits inverted, so 0xFF is +0 and 0x7F is -0; full scale is ±8031 on the
        # 13-bit scale of G.711 Table 2a, ±32124 on the 16-bit scale (Asterisk, sox).
        (g711.ULAW_DECODE, 0xFF, 0),
        (g711.ULAW_DECODE, 0x7F, 0),
        (g711.ULAW_DECODE, 0x00, -32124),
        (g711.ULAW_DECODE, 0x80, 32124),
        (g711.ULAW_DECODE, 0xFE, 8),
        (g711.ULAW_DECODE, 0x7E, -8),
        # A-law: even bits inverted, so the smallest positive value is 0xD5; full scale 4032 on
        # G.711's 12-bit magnitude, 32256 on the 16-bit scale.
        (g711.ALAW_DECODE, 0xD5, 8),
        (g711.ALAW_DECODE, 0x55, -8),
        (g711.ALAW_DECODE, 0x2A, -32256),
        (g711.ALAW_DECODE, 0xAA, 32256),
        (g711.ALAW_DECODE, 0xD4, 24),
    ],
)
def test_known_decoded_values(table: NDArray[np.int16], code: int, value: int) -> None:
    assert int(table[code]) == value


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),  # one's complement: -1 mirrors 0
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_known_encoded_values(sample: int, ulaw: int, alaw: int) -> None:
    pcm = np.array([sample], dtype=np.int16)
    assert g711.ulaw_encode(pcm) == bytes([ulaw])
    assert g711.alaw_encode(pcm) == bytes([alaw])


def _ulaw_step(codes: NDArray[np.uint8]) -> NDArray[np.int32]:
    return 8 << ((~codes.astype(np.int32) >> 4) & 7)


def _alaw_step(codes: NDArray[np.uint8]) -> NDArray[np.int32]:
    segment = ((codes.astype(np.int32) ^ 0x55) & 0x7F) >> 4
    step: NDArray[np.int32] = 16 << np.maximum(segment - 1, 0)
    return step


def test_ulaw_round_trip_error_is_within_half_a_step() -> None:
    codes = np.frombuffer(g711.ulaw_encode(ALL_SAMPLES), dtype=np.uint8)
    error = np.abs(ALL_SAMPLES.astype(np.int32) - g711.ulaw_decode(codes.tobytes()))
    in_range = np.abs(ALL_SAMPLES.astype(np.int32)) <= 32635  # µ-law's top decision level
    assert np.all(2 * error[in_range] <= _ulaw_step(codes)[in_range])
    # Beyond it µ-law saturates at its largest level.
    decoded = g711.ulaw_decode(codes[~in_range].tobytes())
    assert set(np.abs(decoded).tolist()) == {32124}


def test_alaw_round_trip_error_is_within_half_a_step() -> None:
    codes = np.frombuffer(g711.alaw_encode(ALL_SAMPLES), dtype=np.uint8)
    error = np.abs(ALL_SAMPLES.astype(np.int32) - g711.alaw_decode(codes.tobytes()))
    assert np.all(2 * error <= _alaw_step(codes))


def test_encoding_a_decoded_code_gives_the_code_back() -> None:
    ulaw = np.frombuffer(g711.ulaw_encode(g711.ULAW_DECODE), dtype=np.uint8)
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF  # µ-law's negative zero decodes to 0, which encodes as +0
    np.testing.assert_array_equal(ulaw, expected)
    alaw = np.frombuffer(g711.alaw_encode(g711.ALAW_DECODE), dtype=np.uint8)
    np.testing.assert_array_equal(alaw, ALL_CODES)


def test_decoding_is_odd_symmetric() -> None:
    # Flipping the sign bit negates the value, for both laws.
    np.testing.assert_array_equal(g711.ULAW_DECODE[ALL_CODES ^ 0x80], -g711.ULAW_DECODE)
    np.testing.assert_array_equal(g711.ALAW_DECODE[ALL_CODES ^ 0x80], -g711.ALAW_DECODE)


def test_tables_are_read_only() -> None:
    for table in (g711.ULAW_ENCODE, g711.ULAW_DECODE, g711.ALAW_ENCODE, g711.ALAW_DECODE):
        with pytest.raises(ValueError, match="read-only"):
            table[0] = 0


def test_encode_into_writes_the_payload_of_a_packet_buffer() -> None:
    frame = (np.sin(np.arange(SAMPLES_PER_FRAME) / 5) * 20000).astype(np.int16)
    packet = bytearray(12 + SAMPLES_PER_FRAME)
    payload = memoryview(packet)[12:]
    assert g711.ulaw_encode_into(frame, payload) == SAMPLES_PER_FRAME
    assert packet[12:] == g711.ulaw_encode(frame)
    assert packet[:12] == bytes(12)
    assert g711.alaw_encode_into(frame, payload) == SAMPLES_PER_FRAME
    assert packet[12:] == g711.alaw_encode(frame)


def test_decode_into_a_caller_array_and_any_payload_length() -> None:
    data = bytes(range(240))  # a peer's 30 ms packet
    out = np.empty(240, dtype=np.int16)
    result = g711.ulaw_decode(data, out=out)
    assert result is out
    np.testing.assert_array_equal(out, g711.ULAW_DECODE[:240])
    assert g711.alaw_decode(memoryview(data)[:10]).tolist() == g711.ALAW_DECODE[:10].tolist()
    assert len(g711.ulaw_decode(b"")) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.dtype(">i2")])
def test_encode_refuses_anything_but_native_int16(dtype: np.dtype[np.generic]) -> None:
    with pytest.raises(TypeError):
        g711.ulaw_encode(np.zeros(SAMPLES_PER_FRAME, dtype=dtype))
    with pytest.raises(TypeError):
        g711.alaw_encode_into(np.zeros(4, dtype=dtype), bytearray(4))


# --- Against sox (libsox's g711.c tables) ----------------------------------------------------

requires_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


def _sox_encode(tmp_path: Path, encoding: str) -> NDArray[np.uint8]:
    source = tmp_path / "all.wav"
    source.write_bytes(encode_wav(ALL_SAMPLES, 8000))
    target = tmp_path / f"{encoding}.raw"
    # -D: no dither, or sox adds noise before quantising.
    subprocess.run(
        ["sox", "-V1", "-D", str(source), "-t", "raw", "-e", encoding, str(target)], check=True
    )
    return np.frombuffer(target.read_bytes(), dtype=np.uint8)


def _round_half_up(samples: NDArray[np.int16], drop_bits: int) -> NDArray[np.int16]:
    """sox's conversion to 14 or 13 bits, kept on the 16-bit scale: round half up, saturate."""
    wide = samples.astype(np.int32)
    top = 32767 >> drop_bits << drop_bits
    rounded = ((wide + (1 << (drop_bits - 1))) >> drop_bits) << drop_bits
    result: NDArray[np.int16] = np.minimum(rounded, top).astype(np.int16)
    return result


@requires_sox
def test_alaw_matches_sox_bit_for_bit(tmp_path: Path) -> None:
    sox = _sox_encode(tmp_path, "a-law")
    # sox rounds to 13 bits where G.191 truncates, so compare on sox's rounded input; on
    # multiples of 8 the two agree with no adjustment at all.
    ours = np.frombuffer(g711.alaw_encode(_round_half_up(ALL_SAMPLES, 3)), dtype=np.uint8)
    np.testing.assert_array_equal(sox, ours)
    exact = ALL_SAMPLES % 8 == 0
    assert g711.alaw_encode(ALL_SAMPLES[exact]) == sox[exact].tobytes()


@requires_sox
def test_ulaw_matches_sox_up_to_its_twos_complement_negatives(tmp_path: Path) -> None:
    sox = _sox_encode(tmp_path, "u-law")
    rounded = _round_half_up(ALL_SAMPLES, 2)
    # libsox (Sun's g711.c) takes a negative sample's magnitude as -x where G.191 takes ~x,
    # so on the negative side sox encodes x as G.191 encodes x - 4 (one 14-bit step lower).
    shifted = np.where(rounded < 0, np.maximum(rounded.astype(np.int32) - 4, -32768), rounded)
    ours = np.frombuffer(g711.ulaw_encode(shifted.astype(np.int16)), dtype=np.uint8)
    np.testing.assert_array_equal(sox, ours)
    # Without the shift they disagree only on the 127 negative decision levels, by one step.
    plain = np.frombuffer(g711.ulaw_encode(rounded), dtype=np.uint8)
    differ = plain != sox
    assert len(set(rounded[differ].tolist())) == 127
    assert np.all(rounded[differ] < 0)
    assert np.all(np.abs(plain[differ].astype(np.int32) - sox[differ]) == 1)


@requires_sox
@pytest.mark.parametrize(
    ("encoding", "table"), [("u-law", g711.ULAW_DECODE), ("a-law", g711.ALAW_DECODE)]
)
def test_decoding_matches_sox(tmp_path: Path, encoding: str, table: NDArray[np.int16]) -> None:
    source = tmp_path / "codes.raw"
    source.write_bytes(ALL_CODES.tobytes())
    target = tmp_path / "decoded.raw"
    subprocess.run(
        [
            *("sox", "-V1", "-t", "raw", "-r", "8000", "-c", "1", "-e", encoding, str(source)),
            *("-t", "raw", "-e", "signed", "-b", "16", "-L", str(target)),
        ],
        check=True,
    )
    np.testing.assert_array_equal(np.frombuffer(target.read_bytes(), dtype="<i2"), table)
