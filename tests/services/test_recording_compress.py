"""Post-call compression: Opus and MP3 beside the WAV, channels kept apart, never a half file."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from callcenter.media import (
    PCM,
    SAMPLE_RATE,
    decode_wav,
    dominant_frequency,
    encode_wav,
    goertzel_power,
)
from callcenter.services.recordings.compress import (
    CompressedFile,
    CompressionError,
    Format,
    compress,
    compressed_path,
)

FORMATS: list[Format] = ["opus", "mp3"]
LEFT_HZ, RIGHT_HZ = 700.0, 1300.0

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pydub's own temporaries go under the test's directory, where leftovers show."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    return system_tmp


def _stereo_tones(seconds: float) -> PCM:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    left = 8000 * np.sin(2 * np.pi * LEFT_HZ * t)
    right = 8000 * np.sin(2 * np.pi * RIGHT_HZ * t)
    return np.stack([left, right], axis=1).astype(np.int16)


def _wav(directory: Path, seconds: float = 3.0, name: str = "call.wav") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(encode_wav(_stereo_tones(seconds), SAMPLE_RATE, channels=2))
    return path


def _decode(path: Path) -> PCM:
    """The compressed file back to 8 kHz stereo samples, by ffmpeg."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ar", "8000", "-ac", "2", "-f", "wav", "-"],
        capture_output=True,
        check=True,
    )
    wav = decode_wav(done.stdout)
    assert (wav.sample_rate, wav.channels) == (SAMPLE_RATE, 2)
    return wav.samples


def _leak_db(samples: PCM, wanted: float, other: float) -> float:
    """How far below the channel's own tone the other channel's tone is, in dB (negative)."""
    return 10 * math.log10(
        goertzel_power(samples, other) / max(goertzel_power(samples, wanted), 1e-30)
    )


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@needs_ffmpeg
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stereo_recording_compresses_with_its_channels_apart(tmp_path: Path, fmt: Format) -> None:
    wav = _wav(tmp_path / "calls")
    done = compress(wav, fmt=fmt)

    assert isinstance(done, CompressedFile)
    assert done.path == wav.with_suffix(f".{fmt}") == compressed_path(wav, fmt)
    assert done.fmt == fmt
    data = done.path.read_bytes()
    assert done.size_bytes == len(data)
    assert done.sha256 == hashlib.sha256(data).hexdigest()
    assert abs(done.duration_seconds - 3.0) < 0.1
    assert sorted(p.name for p in wav.parent.iterdir()) == sorted([wav.name, done.path.name])
    assert wav.stat().st_size > 5 * done.size_bytes
    # The container is what the suffix says.
    assert data[:4] == b"OggS" if fmt == "opus" else data[:3] in (b"ID3", b"\xff\xf3", b"\xff\xe3")

    samples = _decode(done.path)
    assert abs(len(samples) / SAMPLE_RATE - 3.0) < 0.1
    second = samples[SAMPLE_RATE : 2 * SAMPLE_RATE]  # a whole second: whole cycles of both
    left, right = second[:, 0], second[:, 1]
    assert abs(dominant_frequency(left) - LEFT_HZ) < 5
    assert abs(dominant_frequency(right) - RIGHT_HZ) < 5
    # Kept apart, not merely dominant: the other side is far below (coupled stereo Opus at
    # this bitrate leaks at about -20 dB; these encodings measured below -70).
    assert _leak_db(left, LEFT_HZ, RIGHT_HZ) < -40
    assert _leak_db(right, RIGHT_HZ, LEFT_HZ) < -40


@needs_ffmpeg
@pytest.mark.asyncio
async def test_it_runs_in_a_worker_thread_and_a_second_run_replaces_the_copy(
    tmp_path: Path,
) -> None:
    wav = _wav(tmp_path, seconds=1.0)
    first = await asyncio.to_thread(compress, wav)
    second = await asyncio.to_thread(compress, wav)
    assert first.path == second.path
    assert hashlib.sha256(second.path.read_bytes()).hexdigest() == second.sha256
    assert _hidden(tmp_path) == []


@needs_ffmpeg
def test_an_empty_recording_compresses_to_an_empty_file_of_its_format(tmp_path: Path) -> None:
    wav = _wav(tmp_path, seconds=0.0)
    done = compress(wav, fmt="opus")
    assert done.duration_seconds == 0.0
    assert done.path.read_bytes()[:4] == b"OggS"


def test_a_missing_wav_is_a_compression_error(tmp_path: Path) -> None:
    with pytest.raises(CompressionError, match="no such WAV file") as caught:
        compress(tmp_path / "gone.wav")
    assert caught.value.reason == "no such WAV file"
    assert list(tmp_path.iterdir()) == [tmp_path / "system-tmp"]


@needs_ffmpeg
@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not audio at all\n", b"RIFF\x24\x00\x00\x00WAVE", b"ID3\x04" + bytes(200)],
    ids=["empty", "text", "header-only", "mp3-named-wav"],
)
def test_what_is_not_a_pcm_wav_is_refused_without_ffmpeg_guessing(
    tmp_path: Path, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(content)
    ran: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a))
    with pytest.raises(CompressionError, match="not a PCM WAV file"):
        compress(wav)
    assert ran == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.wav", "system-tmp"]


def test_a_wav_over_the_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = _wav(tmp_path, seconds=1.0)

    def never(*args: object) -> None:
        raise AssertionError("read")

    monkeypatch.setattr("pydub.AudioSegment.from_wav", never)
    with pytest.raises(CompressionError, match="exceeds the 1000-byte limit"):
        compress(wav, max_bytes=1000)


@pytest.mark.parametrize("how", ["empty PATH", "which"])
def test_without_ffmpeg_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    wav = _wav(tmp_path, seconds=1.0)
    if how == "which":
        monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    else:
        empty = tmp_path / "bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(CompressionError, match="ffmpeg not found on PATH") as caught:
        compress(wav)
    assert caught.value.reason.startswith("ffmpeg not found")
    assert not compressed_path(wav).exists()


def test_an_unknown_format_or_a_source_with_the_target_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompressionError, match="unknown format 'flac'"):
        compress(_wav(tmp_path), fmt="flac")  # type: ignore[arg-type]
    with pytest.raises(CompressionError, match=r"already has the \.opus suffix"):
        compress(tmp_path / "call.opus")


@needs_ffmpeg
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failing_ffmpeg_leaves_the_previous_copy_whole_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path, fmt: Format
) -> None:
    wav = _wav(tmp_path / "calls", seconds=1.0)
    final = compressed_path(wav, fmt)
    final.write_bytes(b"the previous good copy")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    # Writes half an output where it was told to, complains, fails: like a crash mid-encode.
    fake.write_text(
        '#!/bin/sh\nfor last; do :; done\nprintf half > "$last"\n'
        'echo "Error while encoding: simulated encoder crash" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    with pytest.raises(CompressionError, match="ffmpeg failed") as caught:
        compress(wav, fmt=fmt)
    assert "simulated encoder crash" in str(caught.value)
    assert final.read_bytes() == b"the previous good copy"
    assert _hidden(wav.parent) == []
    # Nor does pydub's own pair (a copy of the WAV, the half output) stay behind, or open.
    del caught
    gc.collect()
    assert list(private_tmp.iterdir()) == []


@needs_ffmpeg
def test_a_failed_rename_leaves_the_previous_copy_whole_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = _wav(tmp_path, seconds=1.0)
    final = compressed_path(wav)
    final.write_bytes(b"the previous good copy")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(CompressionError, match=r"could not write.*No space left"):
        compress(wav)
    assert final.read_bytes() == b"the previous good copy"
    assert _hidden(tmp_path) == []
