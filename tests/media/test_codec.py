"""The codec registry and descriptors: lookups by rtpmap and payload type, and each codec's I/O."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.media import g711
from callcenter.media.codec import L16_8000, PCMA, PCMU, Codec, CodecError, CodecRegistry
from callcenter.media.codec import default_registry as make_default_registry
from callcenter.media.frame import (
    FRAME_MS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    SILENCE,
    MediaError,
    silence,
)

ALL_CODECS = (PCMU, PCMA, L16_8000)


def test_default_registry_offers_pcmu_then_pcma() -> None:
    registry = make_default_registry()
    assert [codec.rtpmap for codec in registry] == ["PCMU/8000", "PCMA/8000"]
    assert registry.by_payload_type(0) is PCMU
    assert registry.by_payload_type(8) is PCMA
    assert registry.by_payload_type(18) is None  # G.729: not ours
    assert registry.by_payload_type(101) is None  # dynamic: belongs to a session's SDP
    assert len(registry) == 2
    assert PCMU in registry and L16_8000 not in registry


def test_default_registry_is_fresh_each_time() -> None:
    first = make_default_registry()
    first.register(L16_8000)
    assert L16_8000 not in make_default_registry()


@pytest.mark.parametrize("name", ["PCMU", "pcmu", "Pcmu", "pCmU"])
def test_names_are_case_insensitive(name: str) -> None:
    # RFC 4855 §3: "media subtype names are case-insensitive".
    assert make_default_registry().by_name(name, 8000) is PCMU


def test_lookup_needs_the_right_clock_rate_and_channels() -> None:
    registry = CodecRegistry(ALL_CODECS)
    assert registry.by_name("PCMA", 16000) is None
    assert registry.by_name("L16", 8000) is L16_8000
    assert registry.by_name("L16", 8000, channels=2) is None
    assert registry.by_name("L16", 44100) is None
    assert registry.by_name("G722", 8000) is None


def test_registration_order_is_preference_order() -> None:
    registry = CodecRegistry()
    for codec in (PCMA, L16_8000, PCMU):
        assert registry.register(codec) is codec
    assert list(registry) == [PCMA, L16_8000, PCMU]
    assert repr(registry) == "CodecRegistry([PCMA/8000, L16/8000, PCMU/8000])"


def test_iteration_is_a_snapshot() -> None:
    registry = make_default_registry()
    codecs = iter(registry)
    registry.register(L16_8000)
    assert list(codecs) == [PCMU, PCMA]


def test_duplicates_are_refused() -> None:
    registry = make_default_registry()
    with pytest.raises(CodecError, match="already registered"):
        registry.register(dataclasses.replace(PCMU, name="pcmu", payload_type=None))
    with pytest.raises(CodecError, match="payload type 0 already names PCMU/8000"):
        registry.register(dataclasses.replace(PCMU, name="X-ULAW"))
    assert list(registry) == [PCMU, PCMA]


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "PCMU/8000"},
        {"name": ""},
        {"name": "two words"},
        {"payload_type": 96},
        {"payload_type": -1},
        {"clock_rate": 0},
        {"sample_rate": -8000},
        {"channels": 0},
        {"frame_bytes": 0},
    ],
)
def test_invalid_descriptors_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(CodecError):
        dataclasses.replace(PCMU, **changes)  # type: ignore[arg-type]


def test_codec_errors_are_media_errors() -> None:
    assert issubclass(CodecError, MediaError)
    assert issubclass(CodecError, ValueError)


def test_descriptors_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PCMU.payload_type = 8  # type: ignore[misc]


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_frame_geometry(codec: Codec) -> None:
    assert codec.timestamp_step == 160
    assert codec.samples_per_frame == SAMPLES_PER_FRAME
    frame = np.arange(SAMPLES_PER_FRAME, dtype=np.int16) * 100
    assert len(codec.encode(frame)) == codec.frame_bytes


def test_g711_descriptors_use_the_g711_functions() -> None:
    frame = (np.sin(np.arange(SAMPLES_PER_FRAME) / 3) * 12000).astype(np.int16)
    assert PCMU.encode(frame) == g711.ulaw_encode(frame)
    assert PCMA.encode(frame) == g711.alaw_encode(frame)
    np.testing.assert_array_equal(
        PCMU.decode(PCMU.encode(frame)), g711.ulaw_decode(PCMU.encode(frame))
    )


def test_l16_is_big_endian() -> None:
    pcm = np.array([1, -2, 0x1234], dtype=np.int16)
    assert L16_8000.encode(pcm) == b"\x00\x01\xff\xfe\x12\x34"
    np.testing.assert_array_equal(L16_8000.decode(b"\x00\x01\xff\xfe\x12\x34"), pcm)


def test_l16_refuses_half_samples_and_non_int16() -> None:
    with pytest.raises(CodecError, match="whole samples"):
        L16_8000.decode(b"\x00\x01\x02")
    with pytest.raises(TypeError):
        L16_8000.encode(np.zeros(4, dtype=np.float64))


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_encode_into_and_decode_into_match_the_allocating_forms(codec: Codec) -> None:
    frame = (np.cos(np.arange(SAMPLES_PER_FRAME) / 7) * 9000).astype(np.int16)
    packet = bytearray(12 + codec.frame_bytes)
    assert codec.encode_into(frame, memoryview(packet)[12:]) == codec.frame_bytes
    assert bytes(packet[12:]) == codec.encode(frame)
    out = np.empty(SAMPLES_PER_FRAME, dtype=np.int16)
    assert codec.decode(packet[12:], out=out) is out
    np.testing.assert_array_equal(out, codec.decode(bytes(packet[12:])))


@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_l16_round_trips_exactly(samples: list[int]) -> None:
    pcm = np.array(samples, dtype=np.int16)
    np.testing.assert_array_equal(L16_8000.decode(L16_8000.encode(pcm)), pcm)


@given(st.binary(max_size=400))
def test_g711_payloads_round_trip_through_pcm(payload: bytes) -> None:
    # Every code decodes to a level that encodes back to itself (except µ-law's -0).
    assert PCMA.encode(PCMA.decode(payload)) == payload
    assert PCMU.encode(PCMU.decode(payload)) == payload.replace(b"\x7f", b"\xff")


def test_frame_constants_and_silence() -> None:
    assert (SAMPLE_RATE, FRAME_MS, SAMPLES_PER_FRAME) == (8000, 20, 160)
    fresh = silence()
    assert fresh.dtype == np.int16 and fresh.shape == (SAMPLES_PER_FRAME,)
    assert not fresh.any()
    fresh[0] = 1  # writable, and not shared
    assert silence()[0] == 0
    assert SILENCE.dtype == np.int16 and SILENCE.shape == (SAMPLES_PER_FRAME,)
    assert not SILENCE.any()
    with pytest.raises(ValueError, match="read-only"):
        SILENCE[0] = 1
