"""The recording file writer and crash repair: valid after every append, whole after a crash."""

from __future__ import annotations

import errno
import hashlib
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.media import PCM, SAMPLE_RATE, decode_wav, encode_wav
from callcenter.services.audiofiles import HEADERS, WavFileWriter, repair


def _mono(n: int, start: int = 0) -> PCM:
    return (np.arange(start, start + n) % 30000).astype(np.int16)


def _stereo(n: int, start: int = 0) -> PCM:
    """Frames whose left channel counts up and right channel counts down: order shows."""
    left = (np.arange(start, start + n) % 30000).astype(np.int16)
    return np.stack([left, -left - 1], axis=1).astype(np.int16)


def _pcm(samples: PCM) -> bytes:
    return samples.astype("<i2").tobytes()


def _sizes(data: bytes) -> tuple[int, int]:
    riff: int = struct.unpack_from("<I", data, 4)[0]
    size: int = struct.unpack_from("<I", data, 40)[0]
    return riff, size


def _valid(path: Path, channels: int) -> PCM:
    """Decode the file and check its header counts exactly the bytes present."""
    data = path.read_bytes()
    assert _sizes(data) == (len(data) - 8, len(data) - 44)
    wav = decode_wav(data)
    assert (wav.sample_rate, wav.channels) == (SAMPLE_RATE, channels)
    return wav.samples


def test_headers_are_canonical() -> None:
    for channels, header in HEADERS.items():
        assert len(header) == 44
        tag, ch, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", header, 20)
        assert (tag, ch, rate, bits) == (1, channels, SAMPLE_RATE, 16)
        assert block_align == 2 * channels
        assert byte_rate == SAMPLE_RATE * 2 * channels
    assert struct.unpack_from("<IH", HEADERS[2], 28) == (32000, 4)


@pytest.mark.parametrize("channels", [1, 2])
def test_several_appends_valid_after_each(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "deep" / "dir" / "a.wav"
    make = _mono if channels == 1 else _stereo
    writer = WavFileWriter.create(path, channels=channels)
    assert len(_valid(path, channels)) == 0
    written = 0
    for n in (160, 1, 800, 0, 8000):
        writer.append(_pcm(make(n, written)))
        written += n
        assert writer.samples == written
        np.testing.assert_array_equal(_valid(path, channels), make(written))
    closed = writer.close()
    samples = _valid(path, channels)
    np.testing.assert_array_equal(samples, make(written))
    if channels == 2:
        assert samples.shape == (written, 2)
        assert samples[5, 0] == 5 and samples[5, 1] == -6  # left is left
    assert closed.channels == channels
    assert closed.samples == written
    assert closed.duration_seconds == written / SAMPLE_RATE
    assert closed.size_bytes == path.stat().st_size == 44 + written * 2 * channels
    assert closed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # The same bytes as encoding it all at once.
    assert path.read_bytes() == encode_wav(make(written), SAMPLE_RATE, channels)


def test_create_is_exclusive_and_checks_channels(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    WavFileWriter.create(path).close()
    with pytest.raises(FileExistsError):
        WavFileWriter.create(path)
    for channels in (0, 3):
        with pytest.raises(ValueError, match="mono or stereo"):
            WavFileWriter.create(tmp_path / f"{channels}.wav", channels=channels)
        assert not (tmp_path / f"{channels}.wav").exists()


@pytest.mark.parametrize(("channels", "length"), [(1, 1), (1, 3), (2, 2), (2, 6), (2, 5)])
def test_partial_frames_refused(tmp_path: Path, channels: int, length: int) -> None:
    path = tmp_path / "a.wav"
    writer = WavFileWriter.create(path, channels=channels)
    writer.append(bytes(4))
    with pytest.raises(ValueError, match="whole"):
        writer.append(bytes(length))
    assert writer.data_bytes == 4
    assert writer.close().samples == 4 // (2 * channels)
    assert path.stat().st_size == 48


def test_closed_writer_refuses(tmp_path: Path) -> None:
    writer = WavFileWriter.create(tmp_path / "a.wav")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.append(bytes(2))
    with pytest.raises(ValueError, match="closed"):
        writer.close()


def test_discard_deletes(tmp_path: Path) -> None:
    writer = WavFileWriter.create(tmp_path / "a.wav", channels=2)
    writer.append(bytes(40))
    writer.discard()
    writer.discard()
    assert not (tmp_path / "a.wav").exists()


def _failing_once(
    writer: WavFileWriter, monkeypatch: pytest.MonkeyPatch, *, call: int, take: int
) -> list[int]:
    """Make the writer's `call`-th raw write (from 0) take `take` bytes, then raise ENOSPC."""
    file = writer._file
    assert file is not None
    real: Callable[[memoryview], int] = file.write
    calls: list[int] = []

    def write(data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) - 1 == call:
            real(data[:take])  # a partial write reached the disk before it filled up
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(data)

    monkeypatch.setattr(file, "write", write)
    return calls


@pytest.mark.parametrize(
    ("call", "take"),
    [
        (0, 0),  # nothing of the data written
        (0, 1001),  # part of the data, ending mid-frame
        (1, 0),  # all the data, not the RIFF size
        (2, 2),  # data and RIFF size, half the data size
    ],
)
def test_failed_append_then_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: int, take: int
) -> None:
    path = tmp_path / "a.wav"
    writer = WavFileWriter.create(path, channels=2)
    writer.append(_pcm(_stereo(400)))
    calls = _failing_once(writer, monkeypatch, call=call, take=take)
    with pytest.raises(OSError) as failed:
        writer.append(_pcm(_stereo(800, 400)))
    assert failed.value.errno == errno.ENOSPC
    assert writer.samples == 400
    # The file is as it was before the failed append: whole, with the good data only.
    np.testing.assert_array_equal(_valid(path, 2), _stereo(400))
    # Space is back: the next chunk follows the last good data.
    writer.append(_pcm(_stereo(100, 400)))
    np.testing.assert_array_equal(_valid(path, 2), _stereo(500))
    closed = writer.close()
    assert len(calls) > call + 1
    assert closed.samples == 500
    assert closed.size_bytes == 44 + 500 * 4
    assert closed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(_valid(path, 2), _stereo(500))


def test_failed_append_and_failed_roll_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when the disk refuses the roll-back too, the next append and close fix it all."""
    path = tmp_path / "a.wav"
    writer = WavFileWriter.create(path)
    writer.append(_pcm(_mono(100)))
    file = writer._file
    assert file is not None
    real_write, real_truncate = file.write, file.truncate
    failing = True

    def write(data: memoryview) -> int:
        if failing and len(data) == 4:  # the sizes: the data went in, the header did not
            raise OSError(errno.EIO, "I/O error")
        return real_write(data)

    def truncate(size: int | None = None) -> int:
        if failing:
            raise OSError(errno.EIO, "I/O error")
        return real_truncate(size)

    monkeypatch.setattr(file, "write", write)
    monkeypatch.setattr(file, "truncate", truncate)
    with pytest.raises(OSError):
        writer.append(_pcm(_mono(300, 100)))
    assert path.stat().st_size == 44 + 400 * 2  # the leftover the roll-back could not cut
    np.testing.assert_array_equal(decode_wav(path.read_bytes()).samples, _mono(100))
    failing = False
    writer.append(_pcm(_mono(50, 100)))  # overwrites the leftover's start
    np.testing.assert_array_equal(decode_wav(path.read_bytes()).samples, _mono(150))
    closed = writer.close()  # and close cuts the rest
    assert closed.samples == 150
    np.testing.assert_array_equal(_valid(path, 1), _mono(150))


def _crashed(path: Path, samples: PCM, channels: int, *, cut: int, zero_sizes: bool) -> bytes:
    """A file as a crash leaves it: whole data written, cut at `cut`, sizes maybe zero."""
    data = bytearray(encode_wav(samples, SAMPLE_RATE, channels))[:cut]
    if zero_sizes and len(data) >= 44:
        data[4:8] = data[40:44] = bytes(4)
    path.write_bytes(data)
    return bytes(data)


@pytest.mark.parametrize("zero_sizes", [False, True])
@pytest.mark.parametrize("channels", [1, 2])
def test_repair_cut_mid_frame(tmp_path: Path, channels: int, zero_sizes: bool) -> None:
    path = tmp_path / "a.wav"
    make = _mono if channels == 1 else _stereo
    # The header says 1000 frames, the file holds 700 and a bit of the next frame.
    cut = 44 + 700 * 2 * channels + 2 * channels - 1
    _crashed(path, make(1000), channels, cut=cut, zero_sizes=zero_sizes)
    repaired = repair(path)
    assert repaired.changed
    assert repaired.channels == channels
    assert repaired.samples == 700
    assert repaired.duration_seconds == 700 / SAMPLE_RATE
    assert repaired.size_bytes == path.stat().st_size == 44 + 700 * 2 * channels
    assert repaired.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(_valid(path, channels), make(700))
    # Idempotent.
    again = repair(path)
    assert not again.changed
    assert (again.size_bytes, again.sha256, again.samples) == (
        repaired.size_bytes,
        repaired.sha256,
        repaired.samples,
    )


def test_repair_a_writer_left_open(tmp_path: Path) -> None:
    """A process that died while writing: the file is valid already, only not synced."""
    path = tmp_path / "a.wav"
    writer = WavFileWriter.create(path, channels=2)
    writer.append(_pcm(_stereo(321)))
    repaired = repair(path)
    assert not repaired.changed
    assert repaired.samples == 321
    writer.discard()


@pytest.mark.parametrize("channels", [1, 2])
def test_repair_header_only(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(HEADERS[channels])
    repaired = repair(path)
    assert not repaired.changed
    assert (repaired.samples, repaired.size_bytes, repaired.channels) == (0, 44, channels)
    # A header whose sizes a crash left stale, and a stray byte: back to empty.
    data = bytearray(HEADERS[channels]) + b"\x01"
    data[40:44] = struct.pack("<I", 32000)
    path.write_bytes(data)
    repaired = repair(path)
    assert repaired.changed
    assert repaired.samples == 0
    assert path.read_bytes() == HEADERS[channels]


@pytest.mark.parametrize("channels", [1, 2])
def test_repair_good_file_unchanged(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "a.wav"
    writer = WavFileWriter.create(path, channels=channels)
    writer.append(_pcm((_mono if channels == 1 else _stereo)(1234)))
    closed = writer.close()
    before = path.read_bytes()
    repaired = repair(path)
    assert not repaired.changed
    assert path.read_bytes() == before
    assert (repaired.size_bytes, repaired.sha256, repaired.samples, repaired.channels) == (
        closed.size_bytes,
        closed.sha256,
        closed.samples,
        closed.channels,
    )


def _foreign() -> dict[str, bytes]:
    ours = encode_wav(_mono(10), SAMPLE_RATE)

    def with_field(at: int, fmt: str, value: int) -> bytes:
        return ours[:at] + struct.pack(fmt, value) + ours[at + struct.calcsize(fmt) :]

    return {
        "empty": b"",
        "short": ours[:43],
        "text": b"hello, this is not a WAV file at all, not even close" * 2,
        "rifx": b"RIFX" + ours[4:],
        "avi": ours[:8] + b"AVI " + ours[12:],
        "16 kHz": encode_wav(_mono(10), 16000),
        "3 channels": encode_wav(_mono(12), SAMPLE_RATE, 3),
        "8-bit": with_field(34, "<H", 8),
        "float": with_field(20, "<H", 3),
        "µ-law": with_field(20, "<H", 7),
        "bad block align": with_field(32, "<H", 4),
        "bad byte rate": with_field(28, "<I", 8000),
        "list chunk first": ours[:36] + b"LIST" + struct.pack("<I", 4) + b"INFO" + ours[36:],
        "long fmt": ours[:16] + struct.pack("<I", 18) + ours[20:36] + b"\0\0" + ours[36:],
    }


@pytest.mark.parametrize("name", list(_foreign()))
def test_repair_refuses_foreign_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / "a.wav"
    data = _foreign()[name]
    path.write_bytes(data)
    with pytest.raises(ValueError, match="header"):
        repair(path)
    assert path.read_bytes() == data  # left alone


def test_repair_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        repair(tmp_path / "nothing.wav")


_ORIGINAL = _stereo(300)
_ORIGINAL_BYTES = encode_wav(_ORIGINAL, SAMPLE_RATE, 2)


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(_ORIGINAL_BYTES)),
    zero_sizes=st.booleans(),
    stale_sizes=st.integers(min_value=0, max_value=0xFFFF_FFFF),
)
def test_any_cut_repairs_to_a_prefix(cut: int, zero_sizes: bool, stale_sizes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        data = bytearray(_crashed(path, _ORIGINAL, 2, cut=cut, zero_sizes=zero_sizes))
        if cut < 44:
            with pytest.raises(ValueError):
                repair(path)
            return
        if not zero_sizes:
            data[40:44] = struct.pack("<I", stale_sizes)
            path.write_bytes(data)
        repaired = repair(path)
        frames = (cut - 44) // 4
        assert repaired.samples == frames
        assert repaired.channels == 2
        samples = _valid(path, 2)
        assert samples.shape == (frames, 2)
        np.testing.assert_array_equal(samples, _ORIGINAL[:frames])
        assert repaired.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert not repair(path).changed
