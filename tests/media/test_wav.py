"""WAV parsing against files written by sox, espeak-ng and ffmpeg; malformed input; round trips."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from callcenter.media import g711
from callcenter.media.frame import MediaError
from callcenter.media.wav import (
    MAX_CHUNKS,
    DecodedWav,
    WavError,
    decode_wav,
    encode_wav,
    load_prompt,
)

requires_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
requires_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")
requires_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg")

GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def run(*args: str) -> bytes:
    return subprocess.run(args, check=True, capture_output=True).stdout


def sox_reference(path: Path, tmp_path: Path) -> NDArray[np.int16]:
    """What sox itself makes of a file as 16-bit PCM, undithered, channels interleaved."""
    raw = tmp_path / "reference.raw"
    run("sox", "-V1", str(path), "-D", "-t", "raw", "-e", "signed", "-b", "16", "-L", str(raw))
    return np.frombuffer(raw.read_bytes(), dtype="<i2").astype(np.int16)


def chunk(chunk_id: bytes, body: bytes, *, pad: bool = True) -> bytes:
    padding = b"\0" if pad and len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body)) + body + padding


def fmt_body(
    tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16, block: int | None = None
) -> bytes:
    block = channels * ((bits + 7) // 8) if block is None else block
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def extensible_body(
    sub_tag: int, channels: int, rate: int, bits: int, tail: bytes = GUID_TAIL
) -> bytes:
    base = fmt_body(0xFFFE, channels, rate, bits)
    return base + struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", sub_tag) + tail


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def pcm16(samples: list[int]) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


# --- Files written by real tools -------------------------------------------------------------


@requires_espeak
def test_espeak_prompt_loads_at_8khz(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    run("espeak-ng", "-w", str(path), "press one for sales")
    data = path.read_bytes()
    wav = decode_wav(data)
    assert (wav.sample_rate, wav.channels, wav.samples.ndim) == (22050, 1, 1)
    assert len(wav.samples) == (len(data) - 44) // 2
    assert np.abs(wav.samples).max() > 3000  # speech, not silence
    prompt = load_prompt(data)
    assert prompt.dtype == np.int16 and prompt.ndim == 1
    assert len(prompt) == -(-len(wav.samples) * 8000 // 22050)
    # Speech energy sits below 4 kHz, so resampling keeps nearly all of it.
    energy_in = np.mean(wav.samples.astype(np.float64) ** 2)
    energy_out = np.mean(prompt.astype(np.float64) ** 2)
    assert 0.8 < energy_out / energy_in <= 1.01


@requires_espeak
def test_espeak_streamed_to_a_pipe_has_placeholder_sizes(tmp_path: Path) -> None:
    streamed = run("espeak-ng", "--stdout", "press two for support")
    assert struct.unpack_from("<I", streamed, 40)[0] > len(streamed)  # the data size lies
    path = tmp_path / "prompt.wav"
    run("espeak-ng", "-w", str(path), "press two for support")
    np.testing.assert_array_equal(
        decode_wav(streamed).samples, decode_wav(path.read_bytes()).samples
    )


@requires_espeak
@requires_sox
def test_espeak_prompt_resamples_like_sox(tmp_path: Path) -> None:
    source, target = tmp_path / "prompt.wav", tmp_path / "prompt8k.wav"
    run("espeak-ng", "-w", str(source), "press one for sales, press two for support")
    run("sox", "-V1", str(source), "-D", "-r", "8000", str(target))
    ours = load_prompt(source.read_bytes()).astype(np.float64)
    theirs = decode_wav(target.read_bytes()).samples.astype(np.float64)
    assert len(ours) == len(theirs)
    # The filters differ only between 3.6 and 4 kHz, where speech has little energy.
    snr = 10 * np.log10(np.mean(theirs**2) / np.mean((ours - theirs) ** 2))
    assert snr > 30


SOX_FORMATS = {
    "pcm16": ["-b", "16"],
    "pcm8": ["-b", "8"],  # unsigned
    "pcm24": ["-b", "24"],  # sox writes WAVE_FORMAT_EXTENSIBLE and a fact chunk
    "pcm32": ["-b", "32"],
    "float32": ["-e", "float", "-b", "32"],
    "float64": ["-e", "float", "-b", "64"],
    "ulaw": ["-e", "u-law"],
    "alaw": ["-e", "a-law"],
}


@requires_sox
@pytest.mark.parametrize("name", SOX_FORMATS)
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (16000, 4)])
def test_sox_files_decode_like_sox_reads_them(
    tmp_path: Path, name: str, rate: int, channels: int
) -> None:
    path = tmp_path / f"{name}.wav"
    # A chord with a different tone per channel, loud enough to use the top bits.
    run(
        *("sox", "-V1", "-n", "-r", str(rate), "-c", str(channels), *SOX_FORMATS[name]),
        *(
            str(path),
            "synth",
            "0.25",
            "sine",
            "440",
            "sine",
            "1000",
            "sine",
            "1500",
            "sine",
            "3000",
        ),
        *("gain", "-n", "-0.5"),
    )
    wav = decode_wav(path.read_bytes())
    assert (wav.sample_rate, wav.channels) == (rate, channels)
    assert wav.samples.shape == ((rate // 4, channels) if channels > 1 else (rate // 4,))
    expected = sox_reference(path, tmp_path)
    got = wav.samples.reshape(-1)
    if name.startswith("float"):
        # sox rounds float to 32 bits, then to 16: the double rounding may differ by one.
        assert np.abs(got.astype(np.int32) - expected).max() <= 1
    else:
        np.testing.assert_array_equal(got, expected)


@requires_sox
def test_sox_stereo_prompt_becomes_8khz_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    run(
        "sox",
        "-V1",
        "-n",
        "-r",
        "44100",
        "-c",
        "2",
        str(path),
        "synth",
        "1",
        "sine",
        "1000",
        "gain",
        "-6",
    )
    prompt = load_prompt(path.read_bytes())
    assert len(prompt) == 8000
    spectrum = np.abs(np.fft.rfft(prompt[400:-400] * np.hanning(7200)))
    assert np.argmax(spectrum) * 8000 / 7200 == pytest.approx(1000, abs=2)


@requires_sox
def test_sox_reads_what_encode_wav_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    stereo = rng.integers(-32768, 32768, (1000, 2)).astype(np.int16)
    path = tmp_path / "ours.wav"
    path.write_bytes(encode_wav(stereo, 16000, 2))
    assert run("soxi", "-r", str(path)).strip() == b"16000"
    assert run("soxi", "-c", str(path)).strip() == b"2"
    np.testing.assert_array_equal(sox_reference(path, tmp_path), stereo.reshape(-1))


@requires_sox
def test_a_canonical_sox_file_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "canonical.wav"
    run(
        "sox",
        "-V1",
        "-n",
        "-r",
        "8000",
        "-b",
        "16",
        str(path),
        "synth",
        "0.5",
        "sine",
        "697",
        "sine",
        "1209",
    )
    data = path.read_bytes()
    wav = decode_wav(data)
    assert encode_wav(wav.samples, wav.sample_rate, wav.channels) == data


@requires_ffmpeg
@pytest.mark.parametrize("codec", ["pcm_s16le", "pcm_s24le", "pcm_mulaw", "pcm_alaw", "pcm_f32le"])
def test_ffmpeg_files_with_list_chunks_and_pipes(tmp_path: Path, codec: str) -> None:
    args = ("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:duration=0.2")
    path = tmp_path / "ff.wav"
    run(*args, "-ar", "8000", "-c:a", codec, str(path))
    data = path.read_bytes()
    assert b"LIST" in data[:120]  # ffmpeg's INFO/ISFT chunk sits between fmt and data
    wav = decode_wav(data)
    assert (wav.sample_rate, wav.channels, len(wav.samples)) == (8000, 1, 1600)
    spectrum = np.abs(np.fft.rfft(wav.samples * np.hanning(1600)))
    assert np.argmax(spectrum) * 8000 / 1600 == pytest.approx(1000, abs=5)
    # To a pipe ffmpeg cannot seek back, so RIFF and data sizes stay 0xFFFFFFFF.
    streamed = run(*args, "-ar", "8000", "-c:a", codec, "-f", "wav", "-")
    np.testing.assert_array_equal(decode_wav(streamed).samples, wav.samples)


# --- Hand-built headers ----------------------------------------------------------------------


def test_odd_chunks_are_skipped_with_their_pad_byte() -> None:
    data = riff(
        chunk(b"fmt ", fmt_body()),
        chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcd\x00"),  # odd size, padded
        chunk(b"fact", struct.pack("<I", 3)),
        chunk(b"junk", b"xyz"),
        chunk(b"data", pcm16([1, -2, 3])),
        chunk(b"id3 ", b"ID3\x04"),
    )
    wav = decode_wav(data)
    assert (wav.sample_rate, wav.channels) == (8000, 1)
    np.testing.assert_array_equal(wav.samples, [1, -2, 3])


def test_a_writer_that_forgets_the_pad_byte_is_tolerated() -> None:
    data = riff(
        chunk(b"fmt ", fmt_body()),
        chunk(b"LIST", b"odd", pad=False),
        chunk(b"data", pcm16([7, 8])),
    )
    np.testing.assert_array_equal(decode_wav(data).samples, [7, 8])


def test_fmt_with_extra_bytes_and_odd_data_size() -> None:
    fmt = fmt_body(7, 1, 8000, 8) + b"\x00\x00"  # WAVEFORMATEX with cbSize = 0
    data = riff(chunk(b"fmt ", fmt), chunk(b"fact", b"\x03\0\0\0"), chunk(b"data", b"\xff\x80\x00"))
    np.testing.assert_array_equal(decode_wav(data).samples, [0, 32124, -32124])


def test_data_size_past_the_end_keeps_the_samples_present() -> None:
    truncated = riff(chunk(b"fmt ", fmt_body()), chunk(b"data", pcm16([5, 6, 7])))
    truncated = truncated[:-2]  # cut inside the last sample
    np.testing.assert_array_equal(decode_wav(truncated).samples, [5, 6])
    streamed = riff(
        chunk(b"fmt ", fmt_body()), b"data\xff\xff\xff\xff" + pcm16([9]), size=0xFFFFFFFF
    )
    np.testing.assert_array_equal(decode_wav(streamed).samples, [9])


def test_riff_size_of_zero_is_ignored() -> None:
    data = riff(chunk(b"fmt ", fmt_body()), chunk(b"data", pcm16([4])), size=0)
    np.testing.assert_array_equal(decode_wav(data).samples, [4])


def test_partial_last_frame_is_dropped() -> None:
    data = riff(chunk(b"fmt ", fmt_body(channels=2)), chunk(b"data", pcm16([1, 2, 3])))
    wav = decode_wav(data)
    assert wav.samples.shape == (1, 2)
    np.testing.assert_array_equal(wav.samples, [[1, 2]])


def test_extensible_headers_resolve_to_their_sub_format() -> None:
    pcm = riff(
        chunk(b"fmt ", extensible_body(1, 2, 48000, 16)), chunk(b"data", pcm16([1, 2, 3, 4]))
    )
    wav = decode_wav(pcm)
    assert (wav.sample_rate, wav.channels) == (48000, 2)
    np.testing.assert_array_equal(wav.samples, [[1, 2], [3, 4]])
    alaw = riff(chunk(b"fmt ", extensible_body(6, 1, 8000, 8)), chunk(b"data", b"\xd5\x55"))
    np.testing.assert_array_equal(decode_wav(alaw).samples, [8, -8])


def test_twelve_bit_samples_in_16_bit_containers() -> None:
    data = riff(chunk(b"fmt ", fmt_body(bits=12, block=2)), chunk(b"data", pcm16([0x7FF0, -16])))
    np.testing.assert_array_equal(decode_wav(data).samples, [0x7FF0, -16])


def test_wide_samples_round_half_up_and_saturate() -> None:
    words = np.array([0x7FFFFFFF, 0x00008000, 0x00007FFF, -0x00008000, -0x80000000], dtype="<i4")
    data = riff(chunk(b"fmt ", fmt_body(bits=32)), chunk(b"data", words.tobytes()))
    np.testing.assert_array_equal(decode_wav(data).samples, [32767, 1, 0, 0, -32768])
    floats = np.array([1.5, -1.5, np.nan, np.inf, 0.5, -1.0], dtype="<f4")
    data = riff(chunk(b"fmt ", fmt_body(3, bits=32)), chunk(b"data", floats.tobytes()))
    np.testing.assert_array_equal(
        decode_wav(data).samples, [32767, -32768, 0, 32767, 16384, -32768]
    )
    u8 = riff(chunk(b"fmt ", fmt_body(bits=8)), chunk(b"data", bytes([0, 128, 255])))
    np.testing.assert_array_equal(decode_wav(u8).samples, [-32768, 0, 32512])


def test_g711_wav_uses_the_g711_tables() -> None:
    codes = bytes(range(256))
    ulaw = riff(chunk(b"fmt ", fmt_body(7, bits=8)), chunk(b"data", codes))
    np.testing.assert_array_equal(decode_wav(ulaw).samples, g711.ULAW_DECODE)


BAD_FILES = {
    "empty": b"",
    "not riff": b"OggS" + bytes(40),
    "rf64": b"RF64" + bytes(4) + b"WAVE",
    "rifx": b"RIFX" + bytes(4) + b"WAVE",
    "not wave": b"RIFF" + bytes(4) + b"AVI ",
    "no chunks": riff(),
    "no fmt": riff(chunk(b"LIST", b"")),
    "data before fmt": riff(chunk(b"data", b""), chunk(b"fmt ", fmt_body())),
    "no data": riff(chunk(b"fmt ", fmt_body())),
    "two fmt": riff(chunk(b"fmt ", fmt_body()), chunk(b"fmt ", fmt_body()), chunk(b"data", b"")),
    "short fmt": riff(chunk(b"fmt ", fmt_body()[:14]), chunk(b"data", b"")),
    "fmt past end": riff(b"fmt \x00\x01\x00\x00" + fmt_body()),
    "garbage id": riff(chunk(b"fmt ", fmt_body()), b"\x00\x01\x02\x03" + bytes(8)),
    "ima adpcm": riff(chunk(b"fmt ", fmt_body(0x11, bits=4, block=256)), chunk(b"data", b"")),
    "mp3": riff(chunk(b"fmt ", fmt_body(0x55, bits=0, block=1)), chunk(b"data", b"")),
    "zero channels": riff(chunk(b"fmt ", fmt_body(channels=0, block=2)), chunk(b"data", b"")),
    "nine channels": riff(chunk(b"fmt ", fmt_body(channels=9)), chunk(b"data", b"")),
    "zero rate": riff(chunk(b"fmt ", fmt_body(rate=0)), chunk(b"data", b"")),
    "huge rate": riff(chunk(b"fmt ", fmt_body(rate=4_000_000)), chunk(b"data", b"")),
    "block align 0": riff(chunk(b"fmt ", fmt_body(block=0)), chunk(b"data", b"")),
    "block align huge": riff(chunk(b"fmt ", fmt_body(block=0xFFFF)), chunk(b"data", b"")),
    "odd block": riff(chunk(b"fmt ", fmt_body(channels=2, block=3)), chunk(b"data", b"")),
    "bits 0": riff(chunk(b"fmt ", fmt_body(bits=0, block=2)), chunk(b"data", b"")),
    "bits past container": riff(chunk(b"fmt ", fmt_body(bits=24, block=2)), chunk(b"data", b"")),
    "float16": riff(chunk(b"fmt ", fmt_body(3, bits=16)), chunk(b"data", b"")),
    "ulaw16": riff(chunk(b"fmt ", fmt_body(7, bits=16)), chunk(b"data", b"")),
    "extensible short": riff(chunk(b"fmt ", fmt_body(0xFFFE)), chunk(b"data", b"")),
    "extensible guid": riff(
        chunk(b"fmt ", extensible_body(1, 1, 8000, 16, tail=bytes(14))), chunk(b"data", b"")
    ),
    "too many chunks": riff(*[chunk(b"junk", b"")] * (MAX_CHUNKS + 1), chunk(b"fmt ", fmt_body())),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_malformed_files_raise_wav_error(name: str) -> None:
    with pytest.raises(WavError):
        decode_wav(BAD_FILES[name])


def test_size_bound_is_checked_first() -> None:
    data = riff(chunk(b"fmt ", fmt_body()), chunk(b"data", bytes(1000)))
    with pytest.raises(WavError, match="limit"):
        decode_wav(data, max_bytes=500)
    with pytest.raises(WavError, match="limit"):
        load_prompt(data, max_bytes=500)


def test_wav_errors_are_media_errors_and_value_errors() -> None:
    assert issubclass(WavError, MediaError) and issubclass(WavError, ValueError)


@given(
    st.one_of(
        st.binary(max_size=300),
        # Past the magic, where the chunk walk and the fmt checks are exercised.
        st.binary(max_size=300).map(lambda rest: b"RIFF\xff\xff\xff\xffWAVE" + rest),
        st.binary(max_size=300).map(lambda rest: b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0" + rest),
    )
)
def test_arbitrary_bytes_raise_only_wav_error(data: bytes) -> None:
    with contextlib.suppress(WavError):
        decode_wav(data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    tag=st.sampled_from([1, 3, 6, 7, 0xFFFE, 2, 0]),
    channels=st.integers(0, 10),
    rate=st.sampled_from([0, 999, 1000, 8000, 44100, 192000, 192001, 0xFFFFFFFF]),
    block=st.integers(0, 40),
    bits=st.integers(0, 70),
    extra=st.binary(max_size=30),
    body=st.binary(max_size=64),
    cut=st.integers(0, 200),
)
def test_plausible_headers_raise_only_wav_error(
    tag: int, channels: int, rate: int, block: int, bits: int, extra: bytes, body: bytes, cut: int
) -> None:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, 0, block, bits) + extra
    data = riff(chunk(b"fmt ", fmt), chunk(b"data", body))
    data = data[: len(data) - cut] if cut < len(data) else data
    try:
        wav = decode_wav(data)
    except WavError:
        return
    assert wav.samples.dtype == np.int16
    assert wav.samples.shape[1:] == (() if wav.channels == 1 else (wav.channels,))


# --- encode_wav ------------------------------------------------------------------------------


def test_encode_wav_writes_the_canonical_header() -> None:
    data = encode_wav(np.array([1, -1], dtype=np.int16), 8000)
    assert data == (
        b"RIFF" + struct.pack("<I", 40) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
        + b"data" + struct.pack("<I", 4) + b"\x01\x00\xff\xff"
    )  # fmt: skip


@given(
    samples=st.lists(st.integers(-32768, 32767), max_size=200),
    rate=st.sampled_from([8000, 16000, 44100, 48000]),
    channels=st.integers(1, 4),
)
def test_encode_decode_round_trip(samples: list[int], rate: int, channels: int) -> None:
    pcm = np.array(samples[: len(samples) - len(samples) % channels], dtype=np.int16)
    wav = decode_wav(encode_wav(pcm, rate, channels))
    assert (wav.sample_rate, wav.channels) == (rate, channels)
    np.testing.assert_array_equal(wav.samples.reshape(-1), pcm)
    # And from the 2-D form decode_wav gives.
    assert encode_wav(wav.samples, rate, channels) == encode_wav(pcm, rate, channels)


def test_decoded_wav_is_a_named_tuple() -> None:
    samples, rate, channels = decode_wav(encode_wav(np.zeros(3, dtype=np.int16), 8000))
    assert isinstance(decode_wav(encode_wav(samples, rate, channels)), DecodedWav)


@pytest.mark.parametrize(
    ("samples", "rate", "channels"),
    [
        (np.zeros(4, dtype=np.float32), 8000, 1),
        (np.zeros(3, dtype=np.int16), 8000, 2),
        (np.zeros((3, 2), dtype=np.int16), 8000, 1),
        (np.zeros((2, 2, 2), dtype=np.int16), 8000, 2),
        (np.zeros(4, dtype=np.int16), 0, 1),
        (np.zeros(4, dtype=np.int16), 8000, 0),
        (np.zeros(4, dtype=np.int16), 8000, 9),
    ],
)
def test_encode_wav_refuses_what_it_cannot_write(
    samples: NDArray[np.generic], rate: int, channels: int
) -> None:
    with pytest.raises(WavError):
        encode_wav(samples, rate, channels)  # type: ignore[arg-type]
