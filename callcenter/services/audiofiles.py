"""Recording files on disk: 16-bit 8 kHz WAV, mono (voicemail) or stereo (call recordings).

Owns the file while it is written and after a crash. `WavFileWriter` creates it exclusively
(never overwrites), appends interleaved little-endian int16 sample frames with the RIFF and
data sizes of the header rewritten after each append, so that whatever is on disk is a complete
WAV (a crash loses only the chunk not yet handed over), and closes it with its size and sha256.
A failed append (disk full, not writable) leaves the file as it was before it, so a later
append carries on from the last good data. `repair` makes a file a crash left behind (stale
or zero sizes, a partial sample frame at the end) a valid WAV again.

Everything here blocks: it runs in a worker thread (`asyncio.to_thread`), never on the event
loop, and one thread at a time per file. Must not know legs, calls, rooms or the database;
where files go and what their rows say belong to the services that use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from callcenter.media import SAMPLE_RATE, encode_wav

CHANNELS: Final = (1, 2)
SAMPLE_BYTES: Final = 2
HEADER_BYTES: Final = 44

_SIZE: Final = struct.Struct("<I")
_RIFF_SIZE_AT: Final = 4
_CHANNELS_AT: Final = 22
_DATA_SIZE_AT: Final = 40
_RIFF_LIMIT: Final = 0xFFFF_FFFF - 36  # the RIFF size is 36 + data and a uint32


def _empty_header(channels: int) -> bytes:
    header = encode_wav(np.zeros(0, dtype=np.int16), SAMPLE_RATE, channels)
    assert len(header) == HEADER_BYTES
    return header


HEADERS: Final = {channels: _empty_header(channels) for channels in CHANNELS}
"""The canonical header of an empty file per channel count; the sizes at offsets 4 and 40 grow."""


def _frame_bytes(channels: int) -> int:
    return SAMPLE_BYTES * channels


def _max_data(channels: int) -> int:
    frame = _frame_bytes(channels)
    return _RIFF_LIMIT // frame * frame


def _sizes(data_bytes: int) -> tuple[bytes, bytes]:
    return _SIZE.pack(36 + data_bytes), _SIZE.pack(data_bytes)


def _write_at(file: io.FileIO, offset: int, data: bytes) -> None:
    # The file is unbuffered: a raw write may take only part of the bytes, and whatever it
    # took is in the OS, none of it waits in a Python buffer to surface on a later call.
    file.seek(offset)
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written:]


def _measure(path: Path) -> tuple[int, str]:
    """Size and sha256 of the file as it is on disk."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as done:
        while chunk := done.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make the file's directory entry durable too (a new file lost on a power cut)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedWav:
    """The file as closed: what the database row records. `samples` counts sample frames."""

    size_bytes: int
    sha256: str
    samples: int
    channels: int

    @property
    def duration_seconds(self) -> float:
        return self.samples / SAMPLE_RATE


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairedWav:
    """The file after `repair`; `changed` is false when it was already whole."""

    size_bytes: int
    sha256: str
    samples: int
    channels: int
    changed: bool

    @property
    def duration_seconds(self) -> float:
        return self.samples / SAMPLE_RATE


class WavFileWriter:
    """One WAV being written. `create` → `append`... → `close` (or `discard`)."""

    def __init__(self, path: Path, file: io.FileIO, *, channels: int = 1) -> None:
        if channels not in CHANNELS:
            raise ValueError(f"{channels} channels: a recording is mono or stereo")
        self.path = path
        self.channels = channels
        self._file: io.FileIO | None = file
        self.data_bytes = 0

    @classmethod
    def create(cls, path: Path, *, channels: int = 1) -> WavFileWriter:
        """Make the directory and the file (exclusively) with an empty data chunk."""
        if channels not in CHANNELS:
            raise ValueError(f"{channels} channels: a recording is mono or stereo")
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("xb", buffering=0)
        try:
            _write_at(file, 0, HEADERS[channels])
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
        return cls(path, file, channels=channels)

    @property
    def samples(self) -> int:
        """Sample frames written (samples per channel)."""
        return self.data_bytes // _frame_bytes(self.channels)

    def _open(self) -> io.FileIO:
        if self._file is None:
            raise ValueError("the WAV file is closed")
        return self._file

    def append(self, pcm: bytes) -> None:
        """Add interleaved little-endian int16 sample frames and rewrite the header's sizes.

        On OSError the file is put back as it was before the call (as far as the disk lets
        us) and `data_bytes` is unchanged, so the next append continues from the good data.
        """
        file = self._open()
        if len(pcm) % _frame_bytes(self.channels):
            raise ValueError(
                f"PCM chunk of {len(pcm)} bytes is not whole {self.channels}-channel frames"
            )
        data_bytes = self.data_bytes + len(pcm)
        if data_bytes > _max_data(self.channels):
            raise ValueError("a WAV file holds at most 4 GiB")
        riff_size, data_size = _sizes(data_bytes)
        try:
            # Written where the data ends, not at the file's end: a failed write may have
            # left a partial chunk behind, which this one overwrites. Sizes come after the
            # data, so the header never counts bytes that are not there.
            _write_at(file, HEADER_BYTES + self.data_bytes, pcm)
            _write_at(file, _RIFF_SIZE_AT, riff_size)
            _write_at(file, _DATA_SIZE_AT, data_size)
        except OSError:
            self._roll_back(file)
            raise
        self.data_bytes = data_bytes

    def _roll_back(self, file: io.FileIO) -> None:
        """After a failed append: drop its partial data and restore the sizes, best effort."""
        riff_size, data_size = _sizes(self.data_bytes)
        with contextlib.suppress(OSError):
            file.truncate(HEADER_BYTES + self.data_bytes)  # frees what the full disk lacks
        with contextlib.suppress(OSError):
            _write_at(file, _RIFF_SIZE_AT, riff_size)
            _write_at(file, _DATA_SIZE_AT, data_size)

    def close(self) -> ClosedWav:
        """Cut any failed write's leftovers, flush to the disk, close, and measure the file."""
        file = self._open()
        self._file = None
        riff_size, data_size = _sizes(self.data_bytes)
        try:
            file.truncate(HEADER_BYTES + self.data_bytes)
            # Again, in case a failed append could not put them back.
            _write_at(file, _RIFF_SIZE_AT, riff_size)
            _write_at(file, _DATA_SIZE_AT, data_size)
            os.fsync(file.fileno())
        finally:
            file.close()
        _fsync_dir(self.path)
        size, sha256 = _measure(self.path)
        return ClosedWav(
            size_bytes=size, sha256=sha256, samples=self.samples, channels=self.channels
        )

    def discard(self) -> None:
        """Close (if open) and delete the file; never raises (used on the error paths)."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<WavFileWriter {self.path} {self.channels} ch {self.samples} samples>"


def _channels_of(header: bytes) -> int:
    """The channel count of our canonical header, or ValueError for anything else."""
    if len(header) < HEADER_BYTES:
        raise ValueError(f"{len(header)} bytes is shorter than a {HEADER_BYTES}-byte WAV header")
    channels = int.from_bytes(header[_CHANNELS_AT : _CHANNELS_AT + 2], "little")
    canonical = HEADERS.get(channels)
    # Everything but the two sizes must be ours byte for byte: RIFF/WAVE, a 16-byte fmt chunk
    # of PCM, 8 kHz, 16 bits, the block align and byte rate of the channel count, then data.
    if canonical is None or (
        header[:_RIFF_SIZE_AT] != canonical[:_RIFF_SIZE_AT]
        or header[_RIFF_SIZE_AT + 4 : _DATA_SIZE_AT] != canonical[_RIFF_SIZE_AT + 4 : _DATA_SIZE_AT]
    ):
        raise ValueError(
            f"not a canonical 16-bit PCM {SAMPLE_RATE} Hz mono or stereo WAV header "
            f"(starts {header[:16]!r})"
        )
    return channels


def repair(path: Path) -> RepairedWav:
    """Make a WAV that a crash left behind whole again: sizes from the file's length.

    The data is what follows the header, rounded down to whole sample frames (a partial
    frame at the end is cut); the RIFF and data sizes are rewritten to match, and the file is
    synced. Idempotent: a whole file is left as it is (`changed=False`). Raises ValueError for
    a file that is not our canonical 16-bit PCM 8 kHz mono or stereo WAV, OSError for the disk.
    """
    with path.open("r+b", buffering=0) as file:
        header = file.read(HEADER_BYTES)
        channels = _channels_of(header)
        size = os.fstat(file.fileno()).st_size
        frame = _frame_bytes(channels)
        data_bytes = (size - HEADER_BYTES) // frame * frame
        if data_bytes > _max_data(channels):
            raise ValueError(f"{path} holds more data than a WAV file can count (4 GiB)")
        riff_size, data_size = _sizes(data_bytes)
        changed = (
            size != HEADER_BYTES + data_bytes
            or header[_RIFF_SIZE_AT : _RIFF_SIZE_AT + 4] != riff_size
            or header[_DATA_SIZE_AT:HEADER_BYTES] != data_size
        )
        if changed:
            file.truncate(HEADER_BYTES + data_bytes)
            _write_at(file, _RIFF_SIZE_AT, riff_size)
            _write_at(file, _DATA_SIZE_AT, data_size)
        # Even a whole file may be only in the page cache after the process died.
        os.fsync(file.fileno())
    size, sha256 = _measure(path)
    return RepairedWav(
        size_bytes=size,
        sha256=sha256,
        samples=data_bytes // frame,
        channels=channels,
        changed=changed,
    )
