"""Measuring tones in received audio, for the tests that prove who hears whom.

Every party sends its own frequency at about 8000 (−10 dBFS); a tone is heard when its
amplitude passes HEARD and absent below ABSENT, well clear of G.711's noise and of the other
tones' leakage through the window.
"""

from __future__ import annotations

import numpy as np

from callcenter.media import PCM

HEARD = 1500.0  # amplitude of a tone that is there (each is sent at about 8000 / -10 dBFS)
ABSENT = 250.0  # amplitude below which a tone is not there


def amplitude(pcm: PCM, frequency: float) -> float:
    """The amplitude of `frequency` in `pcm` (a Hann-windowed DFT at that one frequency)."""
    samples = pcm.astype(np.float64)
    n = len(samples)
    window = np.hanning(n)
    t = np.arange(n) / 8000.0
    component = np.sum(samples * window * np.exp(-2j * np.pi * frequency * t))
    return float(2 * abs(component) / window.sum())
