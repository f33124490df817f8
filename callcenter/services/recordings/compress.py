"""Post-call compression: a closed recording's WAV copied to Opus (Ogg) or MP3 beside it.

Owns the compressed file: pydub reads the WAV and ffmpeg encodes it, into a hidden temporary
name in the same directory that is renamed over the final name only once the encoder has
finished and the bytes are on disk, so a crash or a failed run never leaves a half file (or
clobbers a good one) under `<stem>.opus` / `<stem>.mp3`. Every failure is a
`CompressionError` saying why (ffmpeg missing, ffmpeg failed, not a WAV, too big), never a
bare pydub or subprocess exception. The WAV is left as it is.

Opus is encoded as two independent mono streams (Ogg channel mapping family 255) rather than
one coupled stereo stream: at a voice bitrate the coupled encoder codes mid/side and leaks
each side into the other at about -20 dB, which would put the agent on the caller's channel;
uncoupled, the leak is below -70 dB at the same bitrate, and Chromium plays it as stereo.

Everything here blocks (pydub holds the whole PCM in memory, about twice the WAV's size at
the peak, and ffmpeg runs as a child process): callers run it in a worker thread
(`asyncio.to_thread`), never on the event loop. Must not know calls, rows or HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
import warnings
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

with warnings.catch_warnings():
    # pydub imports audioop (deprecated since 3.11; audioop-lts from 3.13) and warns at import
    # when ffmpeg is not on PATH: `compress` checks for ffmpeg itself and says so in its error.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "Couldn't find ffmpeg or avconv", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import PydubException

Format = Literal["opus", "mp3"]

MAX_WAV_BYTES: Final = 2 * 1024**3
"""Refused above this before reading (pydub holds about twice the file in memory); 2 GiB is
18 h of stereo 16-bit 8 kHz."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoding:
    """How one format is made: ffmpeg's muxer, encoder, bitrate and encoder options."""

    suffix: str
    muxer: str
    codec: str
    bitrate: str
    parameters: tuple[str, ...] = ()


ENCODINGS: Final[Mapping[Format, Encoding]] = {
    # Ogg Opus; `voip` tunes libopus for speech; family 255 keeps the channels apart.
    "opus": Encoding(
        suffix=".opus",
        muxer="opus",
        codec="libopus",
        bitrate="24k",
        parameters=("-application", "voip", "-mapping_family", "255"),
    ),
    # MPEG-2.5 layer III at 8 kHz; LAME's joint stereo measured no leak between channels.
    "mp3": Encoding(suffix=".mp3", muxer="mp3", codec="libmp3lame", bitrate="32k"),
}


class CompressionError(Exception):
    """The compressed copy could not be made; `reason` says why in a few words."""

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class CompressedFile:
    """The compressed copy as it is on disk: what the recording's row records."""

    path: Path
    fmt: Format
    size_bytes: int
    sha256: str
    duration_seconds: float


def compressed_path(wav_path: Path, fmt: Format = "opus") -> Path:
    """Where `compress` puts the copy: beside the WAV, same stem."""
    return wav_path.with_suffix(ENCODINGS[fmt].suffix)


def compress(
    wav_path: Path, *, fmt: Format = "opus", max_bytes: int = MAX_WAV_BYTES
) -> CompressedFile:
    """Encode the WAV to `fmt` beside it (replacing an older copy only once the new one is
    whole) and measure the result. Blocking: run it with `asyncio.to_thread`."""
    encoding = ENCODINGS.get(fmt)
    if encoding is None:
        raise CompressionError(wav_path, f"unknown format {fmt!r}")
    final = compressed_path(wav_path, fmt)
    if final == wav_path:
        raise CompressionError(wav_path, f"the source already has the {encoding.suffix} suffix")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CompressionError(wav_path, "ffmpeg not found on PATH (Debian package ffmpeg)")
    segment = _read(wav_path, max_bytes)
    # The instance's converter, not the class's: the ffmpeg just found, thread-safely.
    segment.converter = ffmpeg
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    try:
        with temporary.open("xb") as out:
            try:
                segment.export(
                    out,
                    format=encoding.muxer,
                    codec=encoding.codec,
                    bitrate=encoding.bitrate,
                    parameters=list(encoding.parameters),
                )
            except BaseException as exc:
                _drop_export_temporaries(exc)
                if isinstance(exc, PydubException):
                    detail = _last_lines(str(exc))
                    raise CompressionError(wav_path, "ffmpeg failed", detail) from exc
                raise
            out.flush()
            os.fsync(out.fileno())
        size, sha256 = _measure(temporary)
        os.replace(temporary, final)
    except OSError as exc:
        raise CompressionError(wav_path, "could not write the compressed file", str(exc)) from exc
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        _fsync_dir(final.parent)
    return CompressedFile(
        path=final,
        fmt=fmt,
        size_bytes=size,
        sha256=sha256,
        duration_seconds=float(segment.duration_seconds),
    )


def _read(wav_path: Path, max_bytes: int) -> AudioSegment:
    """The WAV's audio; its size and header checked before the samples are read."""
    try:
        size = wav_path.stat().st_size
    except FileNotFoundError as exc:
        raise CompressionError(wav_path, "no such WAV file") from exc
    except OSError as exc:
        raise CompressionError(wav_path, "unreadable WAV", str(exc)) from exc
    if size > max_bytes:
        raise CompressionError(wav_path, f"WAV of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        with wav_path.open("rb") as file:
            # The header first (stdlib, no samples read): pydub, given something it cannot
            # parse, hands it to ffprobe and ffmpeg to guess at instead of refusing it.
            with wave.open(file) as header:
                header.getparams()
            file.seek(0)
            # An open file, not the path: pydub leaves files it opened itself unclosed.
            return AudioSegment.from_wav(file)
    except (wave.Error, EOFError, PydubException) as exc:
        raise CompressionError(wav_path, "not a PCM WAV file", str(exc)) from exc
    except OSError as exc:
        raise CompressionError(wav_path, "unreadable WAV", str(exc)) from exc


def _drop_export_temporaries(exc: BaseException) -> None:
    """Close and remove what a failed `AudioSegment.export` left in the system's temp dir.

    pydub 0.25 encodes through two named temporaries (a WAV copy of the whole recording and
    ffmpeg's output) and removes them only on success: after a failure they stay on disk,
    open (ResourceWarnings when collected). They are the `data` and `output` locals of the
    export frame, which the traceback still holds. If a later pydub renames them, nothing
    is removed, and the failing-ffmpeg test says so.
    """
    export_code = AudioSegment.export.__code__
    tmp_dir = Path(tempfile.gettempdir())
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is export_code:
            for name in ("data", "output"):
                temporary = frame.f_locals.get(name)
                path = getattr(temporary, "name", None)
                close = getattr(temporary, "close", None)
                if not isinstance(path, str) or not callable(close):
                    continue
                if Path(path).parent != tmp_dir:
                    continue  # not one of pydub's (`data` is the caller's file for plain WAV)
                with contextlib.suppress(OSError):
                    close()
                with contextlib.suppress(OSError):
                    os.unlink(path)
        tb = tb.tb_next


def _last_lines(text: str, lines: int = 6) -> str:
    """The end of ffmpeg's output, where it says what went wrong."""
    return "\n".join(text.strip().splitlines()[-lines:])


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
