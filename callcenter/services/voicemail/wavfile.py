"""A voicemail message on disk: a mono 16-bit 8 kHz WAV that is valid after every append.

Owns the file: created exclusively (never overwrites), appended to in chunks with the RIFF and
data sizes of the header rewritten after each chunk, so that whatever is on disk is a complete
WAV (a crash loses only the chunk not yet handed over), then closed with its size and sha256.
Every method blocks: it runs in a worker thread (`asyncio.to_thread`), never on the event loop,
and one thread at a time. Must not know legs, calls or the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from callcenter.media import SAMPLE_RATE, encode_wav

HEADER: Final = encode_wav(np.zeros(0, dtype=np.int16), SAMPLE_RATE)
"""The canonical 44-byte header of an empty file; the sizes at offsets 4 and 40 grow."""
assert len(HEADER) == 44

_SIZE: Final = struct.Struct("<I")
_RIFF_SIZE_AT: Final = 4
_DATA_SIZE_AT: Final = 40
_MAX_DATA: Final = 0xFFFF_FFFF - 36


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedWav:
    """The file as closed: what the database row records."""

    size_bytes: int
    sha256: str
    samples: int

    @property
    def duration_seconds(self) -> float:
        return self.samples / SAMPLE_RATE


class WavFileWriter:
    """One WAV being written. `create` → `append`... → `close` (or `discard`)."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file: BinaryIO | None = file
        self.data_bytes = 0

    @classmethod
    def create(cls, path: Path) -> WavFileWriter:
        """Make the directory and the file (exclusively) with an empty data chunk."""
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("xb")
        try:
            file.write(HEADER)
            file.flush()
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
        return cls(path, file)

    @property
    def samples(self) -> int:
        return self.data_bytes // 2

    def append(self, pcm: bytes) -> None:
        """Add little-endian int16 samples and rewrite the header's sizes."""
        file = self._file
        if file is None:
            raise ValueError("the WAV file is closed")
        if len(pcm) % 2:
            raise ValueError("PCM chunk of an odd number of bytes")
        data_bytes = self.data_bytes + len(pcm)
        if data_bytes > _MAX_DATA:
            raise ValueError("a WAV file holds at most 4 GiB")
        # Written where the data ends, not at the file's end: a failed write may have left
        # a partial chunk behind, which the next one overwrites.
        file.seek(len(HEADER) + self.data_bytes)
        file.write(pcm)
        file.seek(_RIFF_SIZE_AT)
        file.write(_SIZE.pack(36 + data_bytes))
        file.seek(_DATA_SIZE_AT)
        file.write(_SIZE.pack(data_bytes))
        # Out of our buffer into the OS: a crash of the process loses nothing written so far.
        file.flush()
        self.data_bytes = data_bytes

    def close(self) -> ClosedWav:
        """Flush to the disk, close, and measure the file as it stays."""
        file = self._file
        if file is None:
            raise ValueError("the WAV file is closed")
        self._file = None
        try:
            file.truncate(len(HEADER) + self.data_bytes)  # a failed write's leftover
            file.flush()
            os.fsync(file.fileno())
        finally:
            file.close()
        digest = hashlib.sha256()
        size = 0
        with self.path.open("rb") as done:
            while chunk := done.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
        return ClosedWav(size_bytes=size, sha256=digest.hexdigest(), samples=self.samples)

    def discard(self) -> None:
        """Close (if open) and delete the file; never raises (used on the error paths)."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<WavFileWriter {self.path} {self.samples} samples>"
