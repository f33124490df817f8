"""A recording's waveform for the QA player: per-channel peaks, computed once at close.

Owns reading the closed WAV's samples (memory-mapped: a four-hour call is not loaded into
memory) and reducing them to `buckets` peak levels per channel, 0..1000. Blocking: it runs
in a worker thread. Must not know rows, HTTP or the player.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callcenter.services.audiofiles import HEADER_BYTES

DEFAULT_BUCKETS = 1000


def peaks(path: Path, *, channels: int = 2, buckets: int = DEFAULT_BUCKETS) -> list[list[int]]:
    """[[left peaks…], [right peaks…]]: the largest |sample| of each of `buckets` equal
    slices, scaled to 0..1000 (fewer buckets for a shorter file; [] per channel if empty)."""
    if buckets < 1:
        raise ValueError("at least one bucket")
    size = path.stat().st_size - HEADER_BYTES
    frames = max(0, size) // (2 * channels)
    if frames == 0:
        return [[] for _ in range(channels)]
    samples = np.memmap(path, dtype="<i2", mode="r", offset=HEADER_BYTES, shape=(frames, channels))
    count = min(buckets, frames)
    edges = np.linspace(0, frames, count + 1, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(channels)]
    for index in range(count):
        block = np.abs(samples[edges[index] : edges[index + 1]].astype(np.int32))
        top = block.max(axis=0)
        for channel in range(channels):
            out[channel].append(int(top[channel]) * 1000 // 32768)
    del samples
    return out
