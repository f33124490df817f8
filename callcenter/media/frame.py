"""The media frame: 20 ms of 8 kHz mono signed 16-bit PCM, and the media layer's error base.

Every leg, room, mixer, tone source and recorder tap exchanges audio in this one shape, so
nothing downstream of a codec ever asks "which rate?" or "how long?". This module knows
nothing about codecs, RTP, files or clocks.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE: Final = 8000
"""Samples per second of every frame: narrowband telephony (G.711's rate)."""

FRAME_MS: Final = 20
"""Duration of one frame: the media clock's tick and the usual RTP ptime."""

SAMPLES_PER_FRAME: Final = SAMPLE_RATE * FRAME_MS // 1000
"""160 samples per frame."""

PCM: TypeAlias = NDArray[np.int16]
"""Signed 16-bit samples of any length (a prompt, a recording, a decoded payload)."""

Frame: TypeAlias = NDArray[np.int16]
"""One frame: a 1-D int16 array of `SAMPLES_PER_FRAME` samples.

A type alias rather than a class so frames stay plain ndarrays: no wrapper to allocate per
tick and numpy operations keep their types.
"""


class MediaError(Exception):
    """Base of every error raised by `callcenter.media`."""


def silence() -> Frame:
    """Return a fresh, writable frame of zeros (for callers that fill or mix into it)."""
    return np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)


def _frozen_silence() -> Frame:
    frame = silence()
    # Shared by every idle leg; read-only so a mixer that writes into its input by mistake
    # fails loudly instead of putting noise on every call.
    frame.flags.writeable = False
    return frame


SILENCE: Final[Frame] = _frozen_silence()
"""One shared, read-only frame of zeros: use it instead of allocating silence per tick."""
