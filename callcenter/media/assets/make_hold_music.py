"""Render the built-in hold music: soft chords, a slow arpeggio and a bass, as 8 kHz PCM.

Owns the score and the synthesis of `hold-music.wav`, so the asset is reproducible from this
file alone (nothing is downloaded, no randomness). `render()` is pure; only running the
module (`python -m callcenter.media.assets.make_hold_music`) writes the file.

The music: eight bars of 4/4 at 80 BPM (24 s) in F major, Fmaj7 Am7 Dm7 Bbmaj7 Gm7 Am7
Bbmaj7 C7sus4, the last resolving to the first. A pad holds each chord (slow attack, long
release, two slightly detuned voices for warmth), an electric-piano-like arpeggio plays
eighth notes an octave above, and a soft bass plays the roots on beats 1 and 3. Every voice
is built from harmonics (never a lone sine), kept below 3.4 kHz for the telephone band, so it
sounds like music rather than a test tone and cannot pass for DTMF or call-progress tones.
The notes that ring past the end are folded onto the start, so the loop has no seam.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..frame import PCM, SAMPLE_RATE
from ..wav import encode_wav

FloatArray = NDArray[np.float64]

BPM: Final = 80
BEAT: Final = 60.0 / BPM
BAR: Final = 4 * BEAT
LEVEL_DBFS: Final = -20.0
"""RMS of the result, referenced like tone levels (a full-scale sine is 0 dBFS)."""
TOP_HZ: Final = 3400.0
"""No partial above the telephone band's upper edge (and far from 4 kHz aliasing)."""

# (bass root, pad notes) per bar, as MIDI note numbers; voiced for smooth voice leading.
PROGRESSION: Final = (
    (41, (53, 57, 60, 64)),  # Fmaj7
    (45, (52, 55, 57, 60)),  # Am7
    (38, (53, 57, 60, 62)),  # Dm7
    (46, (53, 57, 58, 62)),  # Bbmaj7
    (43, (53, 55, 58, 62)),  # Gm7
    (45, (52, 55, 57, 60)),  # Am7
    (46, (53, 57, 58, 62)),  # Bbmaj7
    (36, (53, 55, 58, 60)),  # C7sus4
)
# Which pad note (an octave up) each eighth note of a bar plays, and how hard.
ARPEGGIO: Final = (0, 1, 2, 3, 2, 1, 2, 3)
ACCENTS: Final = (1.0, 0.6, 0.75, 0.6, 0.85, 0.6, 0.75, 0.6)


def midi_hz(note: int) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12.0))


def _partials(
    t: FloatArray, freq: float, amps: FloatArray, decays: FloatArray | None = None
) -> FloatArray:
    """Sum of harmonics k*freq with amplitudes amps[k-1] (and exponential decay times)."""
    out = np.zeros_like(t)
    for k, amp in enumerate(amps, start=1):
        if k * freq >= TOP_HZ:
            break
        partial = amp * np.sin(2.0 * np.pi * k * freq * t)
        if decays is not None:
            partial *= np.exp(-t / decays[k - 1])
        out += partial
    return out


def _pad(freq: float, hold: float, release: float, rate: int) -> FloatArray:
    t = np.arange(round((hold + release) * rate)) / rate
    amps: FloatArray = np.arange(1, 9, dtype=np.float64) ** -1.6
    # Two voices 0.2 % apart beat slowly (about once a second): a chorus, not a wobble.
    voice = _partials(t, freq * 0.999, amps) + _partials(t, freq * 1.001, amps)
    attack = 0.6
    env = np.ones_like(t)
    rise = t < attack
    env[rise] = 0.5 - 0.5 * np.cos(np.pi * t[rise] / attack)
    fall = t >= hold
    env[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - hold) / release)
    return 0.5 * voice * env


def _pluck(freq: float, length: float, rate: int) -> FloatArray:
    """A soft electric-piano-like note: higher harmonics fade faster than the fundamental."""
    t = np.arange(round(length * rate)) / rate
    k = np.arange(1, 7, dtype=np.float64)
    voice = _partials(t, freq, 1.0 / k**2, 0.7 / k)
    attack = np.minimum(t / 0.008, 1.0)
    tail = np.minimum((length - t) / 0.05, 1.0)  # no click where the note is cut
    return voice * attack * tail


def _bass(freq: float, length: float, rate: int) -> FloatArray:
    t = np.arange(round(length * rate)) / rate
    # Rich in harmonics: a phone barely passes the fundamental (< 130 Hz), the ear fills it in.
    k = np.arange(1, 7, dtype=np.float64)
    voice = _partials(t, freq, 1.0 / k**1.3, 1.2 / k**0.5)
    attack = np.minimum(t / 0.02, 1.0)
    tail = np.minimum((length - t) / 0.1, 1.0)
    return voice * attack * tail


def _place(buffer: FloatArray, start: float, note: FloatArray, gain: float, rate: int) -> None:
    """Add `note` at `start` seconds, wrapping past the end onto the start (a seamless loop)."""
    n = len(buffer)
    first = round(start * rate) % n
    end = first + len(note)
    head = min(end, n) - first
    buffer[first : first + head] += gain * note[:head]
    rest = note[head:]
    while len(rest):
        chunk = rest[:n]
        buffer[: len(chunk)] += gain * chunk
        rest = rest[n:]


def render(rate: int = SAMPLE_RATE) -> PCM:
    """The hold music as int16 mono at `rate`: `len(PROGRESSION)` bars, loopable."""
    total = round(len(PROGRESSION) * BAR * rate)
    mix = np.zeros(total, dtype=np.float64)
    for bar, (root, chord) in enumerate(PROGRESSION):
        start = bar * BAR
        for note in chord:
            _place(mix, start, _pad(midi_hz(note), BAR, 1.2, rate), 0.22, rate)
        for step, (index, accent) in enumerate(zip(ARPEGGIO, ACCENTS, strict=True)):
            note = chord[index] + 12
            _place(mix, start + step * BEAT / 2, _pluck(midi_hz(note), 1.4, rate), accent, rate)
        for beat in (0, 2):
            _place(mix, start + beat * BEAT, _bass(midi_hz(root), 1.8, rate), 0.6, rate)
    mix -= mix.mean()
    target = 32768.0 * 10.0 ** (LEVEL_DBFS / 20.0) / np.sqrt(2.0)  # RMS of a sine at the level
    mix *= target / np.sqrt(np.mean(mix * mix))
    return np.clip(np.rint(mix), -32768, 32767).astype(np.int16)


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("hold-music.wav")
    target.write_bytes(encode_wav(render(), SAMPLE_RATE))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
