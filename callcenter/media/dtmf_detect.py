"""In-band DTMF detection: the fallback when a leg has no RFC 4733 telephone-events.

Owns: turning a stream of 20 ms int16 frames into key presses, one digit per press, in the
spirit of ITU-T Q.24 (operate on tones >= 40 ms down to -38 dBFS per tone, with up to 8 dB normal
and 6 dB reverse twist; a gap >= 40 ms separates presses; reject speech and music).

Must not know: RTP, codecs, legs, timers or what the digits mean. It counts samples, never
time; the IVR decides about inter-digit timeouts.

How it decides, block by block (102 samples = 12.75 ms, independent of frame boundaries):
Goertzel powers at the 8 DTMF frequencies (each also 1 % either side, for senders'
frequency error) and their second harmonics; a block is a candidate key when the strongest
row and column tones are both loud enough, their twist is within limits, each beats the
other tones of its group by 8 dB, together they hold >= 80 % of the block's energy, and
neither has a second harmonic within 12 dB of itself beyond what the detected tones leak into
that bin (voices and instruments have such harmonics; DTMF generators do not). 102 samples
put the first null of each tone's response about 78 Hz away, right where the neighbouring
DTMF frequencies sit (73-156 Hz).
A key is reported when two consecutive blocks agree (>= 25.5 ms of clean tone, which any
tone >= 40 ms contains at any alignment and no 20 ms tone can fake: a block partly filled
with tone fails the 80 % energy test in proportion). The press ends after two blocks in
which the key's tones have fallen 10 dB below their level at the press (any gap >= 40 ms
holds two whole blocks of silence), so a key held for seconds is one digit, and a dropout of
up to 10 ms (a lost packet; Q.24's "interruption"), which spoils at most two blocks but leaves
most of the tone in them, does not split one press into two.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

from .frame import SAMPLE_RATE, SAMPLES_PER_FRAME, Frame
from .tones import DTMF_COLS, DTMF_KEYS, DTMF_ROWS, Goertzel

BLOCK: Final = 102
HITS_TO_PRESS: Final = 2
MISSES_TO_RELEASE: Final = 2


def _db(x: float) -> float:
    return float(10.0 ** (x / 10.0))


# Powers are squared peak amplitudes relative to full scale (see tones.Goertzel).
MIN_TONE_POWER: Final = _db(-38.0)
NORMAL_TWIST: Final = _db(8.0)  # row (low group) louder than column
REVERSE_TWIST: Final = _db(6.0)  # column louder than row
RELATIVE_PEAK: Final = _db(8.0)
TONE_TO_TOTAL: Final = 0.8
HARMONIC_LIMIT: Final = _db(-12.0)

# Senders may be off by 1.5 % + 2 Hz (Q.24). A 102-sample Goertzel loses 1.5 dB at 1633 Hz
# + 26 Hz, which would fail the energy test, so each tone is also measured 1 % either side
# and its best reading kept (at most 0.3 dB lost anywhere in the tolerance). 4 % off still
# fails, as it must. The neighbour comparison uses the nominal bins only.
OFFSET: Final = 0.01
_FUNDAMENTALS: Final = DTMF_ROWS + DTMF_COLS
_HARMONICS: Final = tuple(2.0 * f for f in _FUNDAMENTALS)
_GOERTZEL: Final = Goertzel(
    _FUNDAMENTALS
    + tuple(f * (1.0 - OFFSET) for f in _FUNDAMENTALS)
    + tuple(f * (1.0 + OFFSET) for f in _FUNDAMENTALS)
    + _HARMONICS,
    BLOCK,
    SAMPLE_RATE,
)
_HARMONIC_GOERTZEL: Final = Goertzel(_HARMONICS, BLOCK, SAMPLE_RATE)


def _leakage() -> NDArray[np.float64]:
    """leak[h, f]: worst-case reading at harmonic bin h of a unit sine at fundamental f, over
    phase and over the sender's frequency tolerance. A row's second harmonic lies 58-71 Hz
    from a column frequency (1394 vs 1336 Hz), where a rectangular 102-sample window passes
    a column tone at -10..-20 dB (more when the tone is off-frequency towards it), so the
    harmonic test must discount what the detected tones leak into that bin."""
    n = np.arange(BLOCK, dtype=np.float64)
    phases = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)[:, None]
    leak = np.zeros((len(_HARMONICS), len(_FUNDAMENTALS)))
    for j, nominal in enumerate(_FUNDAMENTALS):
        for f in nominal * (1.0 + np.linspace(-0.02, 0.02, 9)):
            sines = np.sin(2.0 * np.pi * f * n / SAMPLE_RATE + phases) * 32768.0
            leak[:, j] = np.maximum(leak[:, j], _HARMONIC_GOERTZEL.powers(sines).max(axis=0))
    return leak


_LEAK: Final = _leakage().tolist()

Powers = list[float]
"""A block's best power per DTMF frequency: the 4 rows, then the 4 columns."""


def classify_blocks(blocks: NDArray[np.float64]) -> list[tuple[str | None, Powers | None]]:
    """The candidate key (or None) of each row of `blocks` (shape (b, 102), int16 scale), with
    the powers behind the verdict (None for a block too quiet to hold a key)."""
    # Blocks quieter than one minimum tone cannot hold two: skip the Goertzel on silence.
    totals = np.einsum("ij,ij->i", blocks, blocks) * (2.0 / (BLOCK * 32768.0 * 32768.0))
    if not (totals >= 2.0 * MIN_TONE_POWER).any():
        return [(None, None)] * len(blocks)
    # One matrix product for all the numbers; the few comparisons per block then run on
    # Python floats, which beats a dozen numpy calls on arrays of 4 (there are 1-2 blocks a
    # frame).
    powers = _GOERTZEL.powers(blocks).tolist()
    return [_classify(p, t) for p, t in zip(powers, totals.tolist(), strict=True)]


def _classify(p: list[float], total: float) -> tuple[str | None, Powers | None]:
    if total < 2.0 * MIN_TONE_POWER:
        return None, None
    best = [max(p[i], p[8 + i], p[16 + i]) for i in range(8)]
    r = max(range(4), key=best.__getitem__)
    c = max(range(4, 8), key=best.__getitem__)
    pr, pc = best[r], best[c]
    if pr < MIN_TONE_POWER or pc < MIN_TONE_POWER:
        return None, best
    if pr > pc * NORMAL_TWIST or pc > pr * REVERSE_TWIST or pr + pc < TONE_TO_TOTAL * total:
        return None, best
    other_row = max(p[i] for i in range(4) if i != r)
    other_col = max(p[i] for i in range(4, 8) if i != c)
    if other_row * RELATIVE_PEAK > pr or other_col * RELATIVE_PEAK > pc:
        return None, best
    # Leakage of both detected tones into each harmonic bin, amplitudes added (worst case).
    for tone, power in ((r, pr), (c, pc)):
        leak = (math.sqrt(_LEAK[tone][r] * pr) + math.sqrt(_LEAK[tone][c] * pc)) ** 2
        if p[24 + tone] > power * HARMONIC_LIMIT + leak:
            return None, best
    return DTMF_KEYS[4 * r + c - 4], best


class DtmfDetector:
    """Streaming in-band DTMF detector for one leg: `feed(frame)` per 20 ms tick.

    Each key press yields exactly one digit, reported as soon as two clean blocks agree
    (about 26-38 ms after the tone starts), not when the key is released. A press ends after
    two blocks in which the key's tones have fallen 10 dB below their level at the press:
    blocks merely spoiled by a dropout of up to 10 ms (a lost packet, Q.24's "interruption")
    still carry most of the tone and do not end it, so they cannot turn one press into two.
    """

    __slots__ = ("_absent", "_buffer", "_current", "_fill", "_press_power", "_run", "_run_key")

    def __init__(self) -> None:
        # Leftover (< one block) followed by the new frame; reused every tick.
        self._buffer = np.zeros(BLOCK + SAMPLES_PER_FRAME, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self._fill = 0
        self._current: int | None = None  # index in DTMF_KEYS of the key being held
        self._press_power = 0.0  # row + column power when it was pressed
        self._absent = 0  # consecutive blocks without the held key's tones
        self._run_key: str | None = None  # candidate of the latest block
        self._run = 0  # how many consecutive blocks had that candidate

    def feed(self, frame: Frame) -> list[str]:
        """Digits whose press was recognised in this frame (usually none, at most two)."""
        n = len(frame)
        if self._fill + n > len(self._buffer):
            grown = np.zeros(self._fill + n, dtype=np.float64)
            grown[: self._fill] = self._buffer[: self._fill]
            self._buffer = grown
        end = self._fill + n
        self._buffer[self._fill : end] = frame
        blocks = end // BLOCK
        used = blocks * BLOCK
        digits: list[str] = []
        if blocks:
            for key, powers in classify_blocks(self._buffer[:used].reshape(blocks, BLOCK)):
                digit = self._step(key, powers)
                if digit is not None:
                    digits.append(digit)
            self._buffer[: end - used] = self._buffer[used:end]
        self._fill = end - used
        return digits

    def _step(self, key: str | None, powers: Powers | None) -> str | None:
        if key == self._run_key:
            self._run += 1
        else:
            self._run_key, self._run = key, 1
        held = self._current
        if held is not None:
            if key == DTMF_KEYS[held]:
                self._absent = 0
                return None
            row, col = divmod(held, 4)
            level = 0.0 if powers is None else powers[row] + powers[4 + col]
            if level * 10.0 < self._press_power:
                self._absent += 1
                if self._absent >= MISSES_TO_RELEASE:
                    self._current = None
        if key is None or self._run != HITS_TO_PRESS:
            return None
        # Reaching here with a key held means a different key without a gap: some phones roll
        # from key to key, and that is a new press too.
        assert powers is not None  # a candidate key implies the Goertzel ran
        index = DTMF_KEYS.index(key)
        row, col = divmod(index, 4)
        self._current = index
        self._press_power = powers[row] + powers[4 + col]
        self._absent = 0
        return key
