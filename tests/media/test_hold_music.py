"""The built-in hold music: rebuilt from its generator, and music rather than a test tone."""

from __future__ import annotations

import numpy as np

from callcenter.media import (
    SAMPLES_PER_FRAME,
    DtmfDetector,
    decode_wav,
    dominant_frequency,
    frames_of,
    rms_dbfs,
)
from callcenter.media.assets import HOLD_MUSIC
from callcenter.media.assets.make_hold_music import LEVEL_DBFS, render


def test_the_committed_file_is_what_the_generator_makes() -> None:
    wav = decode_wav(HOLD_MUSIC.read_bytes())
    rendered = render(wav.sample_rate)
    assert wav.channels == 1 and len(wav.samples) == len(rendered)
    # Equal but for float rounding that another numpy or CPU may do differently.
    assert np.abs(wav.samples.astype(np.int32) - rendered).max() <= 1
    assert abs(rms_dbfs(rendered) - LEVEL_DBFS) < 0.1
    assert np.abs(rendered).max() < 32768 * 10 ** (-6 / 20)  # headroom, no clipping


def test_hold_music_is_not_a_tone_and_never_looks_like_dtmf() -> None:
    samples = decode_wav(HOLD_MUSIC.read_bytes()).samples
    detector = DtmfDetector()
    digits = [d for frame in frames_of(samples) for d in detector.feed(frame)]
    assert digits == []
    # The strongest pitch moves with the chords: not one steady tone.
    seconds = samples[: len(samples) // 8000 * 8000].reshape(-1, 8000)
    peaks = {round(dominant_frequency(s)) for s in seconds}
    assert len(peaks) >= 4


def test_hold_music_loops_without_a_click() -> None:
    samples = decode_wav(HOLD_MUSIC.read_bytes()).samples.astype(np.float64)
    assert len(samples) % SAMPLES_PER_FRAME == 0
    steps = np.abs(np.diff(samples))
    seam = abs(samples[0] - samples[-1])
    assert seam <= np.percentile(steps, 99)
