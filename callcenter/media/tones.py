"""Tone generation (call-progress tones, in-band DTMF) and tone measurement (Goertzel, FFT).

Owns: phase-continuous 20 ms frames of one or several sines with an optional on/off cadence
counted in frames, the DTMF frequency table and in-band DTMF generation, and the measurements
that prove audio: `goertzel_power`, `Goertzel`, `detect_tone`, `dominant_frequency`, `rms_dbfs`.

Must not know: clocks, sockets, codecs, legs or rooms. A generator only knows "the next frame";
whoever owns the media clock calls it once per tick.

Levels are peak-referenced dBFS: a sine whose peak is full scale (32767) is 0 dBFS, and the
level of a multi-tone signal is the level of *each* component, as telephony specifies tones
(ringback is "440 + 480 Hz at -19 dBm0 per frequency"). For G.711, 0 dBm0 is about -3.17 dBFS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from .frame import FRAME_MS, PCM, SAMPLE_RATE, SAMPLES_PER_FRAME, SILENCE, Frame, MediaError

FULL_SCALE: Final = 32767.0
DBM0_TO_DBFS: Final = -3.17

# A cached cycle longer than this would cost more memory than computing frames on the fly.
_MAX_CYCLE_SAMPLES: Final = SAMPLE_RATE * 2
# Cadence edges are faded over 4 ms (raised cosine): a hard on/off switch is a click.
_RAMP_SAMPLES: Final = 32

FloatArray = NDArray[np.float64]


class ToneError(MediaError, ValueError):
    """A tone or DTMF string that cannot be generated as asked."""


def dbfs_to_amplitude(level_dbfs: float) -> float:
    """Peak amplitude in int16 units of a sine at `level_dbfs`."""
    return FULL_SCALE * math.pow(10.0, level_dbfs / 20.0)


def _to_int16(signal: FloatArray) -> Frame:
    # Round then saturate: a sum of tones near 0 dBFS must clip, never wrap.
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def _readonly(array: NDArray[np.int16]) -> NDArray[np.int16]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, kw_only=True)
class ToneSpec:
    """A call-progress tone: frequencies, level of each component, and cadence.

    `cadence_ms` alternates on and off durations (on, off, on, off, ...), each a multiple of
    20 ms; empty means continuous.
    """

    freqs: tuple[float, ...]
    level_dbfs: float
    cadence_ms: tuple[int, ...] = ()


# North-American call-progress tones (ANSI T1.401 / Telcordia); levels per component.
DIAL_TONE: Final = ToneSpec(freqs=(350.0, 440.0), level_dbfs=-13.0 + DBM0_TO_DBFS)
RINGBACK: Final = ToneSpec(
    freqs=(440.0, 480.0), level_dbfs=-19.0 + DBM0_TO_DBFS, cadence_ms=(2000, 4000)
)
BUSY: Final = ToneSpec(freqs=(480.0, 620.0), level_dbfs=-24.0 + DBM0_TO_DBFS, cadence_ms=(500, 500))
REORDER: Final = ToneSpec(
    freqs=(480.0, 620.0), level_dbfs=-24.0 + DBM0_TO_DBFS, cadence_ms=(250, 250)
)


class _Oscillator:
    """Sum of sines computed frame by frame from a kept phase (no growing sample index).

    sin(phi + w*n) = sin(phi)*cos(w*n) + cos(phi)*sin(w*n): with cos/sin(w*n) tabulated once
    for n in the frame, a frame is one small matrix-vector product, whatever the frame number.
    """

    __slots__ = ("_amps", "_phase", "_step", "_table")

    def __init__(self, freqs: Sequence[float], amplitude: float, sample_rate: int) -> None:
        omega = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64) / sample_rate
        n = np.arange(SAMPLES_PER_FRAME, dtype=np.float64)
        angles = np.outer(omega, n)
        self._table: FloatArray = np.concatenate((np.cos(angles), np.sin(angles)))
        self._step: FloatArray = np.mod(omega * SAMPLES_PER_FRAME, 2.0 * np.pi)
        self._phase: FloatArray = np.zeros_like(omega)
        self._amps = amplitude

    def next(self) -> FloatArray:
        coeffs = np.concatenate((np.sin(self._phase), np.cos(self._phase))) * self._amps
        frame: FloatArray = coeffs @ self._table
        # Wrapping keeps the phase exact however long the call lasts.
        self._phase = np.mod(self._phase + self._step, 2.0 * np.pi)
        return frame


def _cycle_samples(freqs: Sequence[float], sample_rate: int) -> int | None:
    """Length of the shortest whole number of frames after which the tone repeats exactly."""
    if not all(float(f).is_integer() for f in freqs):
        return None
    g = sample_rate
    for f in freqs:
        g = math.gcd(g, int(f))
    period = sample_rate // g
    cycle = period * SAMPLES_PER_FRAME // math.gcd(period, SAMPLES_PER_FRAME)
    return cycle if cycle <= _MAX_CYCLE_SAMPLES else None


@lru_cache(maxsize=64)
def _cycle_table(freqs: tuple[float, ...], level_dbfs: float, sample_rate: int) -> Frame | None:
    # Shared between generators of the same tone: every ringback in the building reads the
    # same 5 frames, so a tick costs a slice, not a sine evaluation.
    cycle = _cycle_samples(freqs, sample_rate)
    if cycle is None:
        return None
    osc = _Oscillator(freqs, dbfs_to_amplitude(level_dbfs), sample_rate)
    frames = [osc.next() for _ in range(cycle // SAMPLES_PER_FRAME)]
    return _readonly(_to_int16(np.concatenate(frames)).reshape(-1, SAMPLES_PER_FRAME))


_ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(_RAMP_SAMPLES) + 0.5) / _RAMP_SAMPLES)
_FADE_IN: Final[FloatArray] = np.concatenate((_ramp, np.ones(SAMPLES_PER_FRAME - _RAMP_SAMPLES)))
_FADE_OUT: Final[FloatArray] = _FADE_IN[::-1].copy()


class ToneGenerator:
    """Continuous 20 ms frames of a tone, phase-continuous across frames, with optional cadence.

    The oscillator runs freely through the off periods of a cadence, and each on period is
    faded in and out over 4 ms, so neither frame boundaries nor cadence edges click.
    Returned frames are read-only and may be shared: copy before modifying.
    """

    __slots__ = ("_cadence", "_frame_no", "_osc", "_segment", "_segment_pos", "_table")

    def __init__(
        self,
        freqs: Sequence[float],
        level_dbfs: float = -13.0,
        *,
        cadence_ms: Sequence[int] = (),
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if not freqs:
            raise ToneError("a tone needs at least one frequency")
        if any(not 0.0 < f < sample_rate / 2 for f in freqs):
            raise ToneError(f"tone frequencies must lie in (0, {sample_rate / 2}) Hz")
        if len(cadence_ms) % 2:
            raise ToneError("cadence_ms alternates on and off durations: give an even count")
        if any(ms <= 0 or ms % FRAME_MS for ms in cadence_ms):
            raise ToneError(f"cadence durations must be positive multiples of {FRAME_MS} ms")
        key = tuple(float(f) for f in freqs)
        self._table = _cycle_table(key, float(level_dbfs), sample_rate)
        self._osc = (
            _Oscillator(key, dbfs_to_amplitude(level_dbfs), sample_rate)
            if self._table is None
            else None
        )
        self._cadence = tuple(ms // FRAME_MS for ms in cadence_ms)
        self.reset()

    @classmethod
    def from_spec(cls, spec: ToneSpec, *, sample_rate: int = SAMPLE_RATE) -> ToneGenerator:
        return cls(spec.freqs, spec.level_dbfs, cadence_ms=spec.cadence_ms, sample_rate=sample_rate)

    def reset(self) -> None:
        """Start again at the beginning of the first on period."""
        self._frame_no = 0
        self._segment = 0
        self._segment_pos = 0

    @property
    def is_on(self) -> bool:
        """Whether the next frame falls in an on period of the cadence."""
        return not self._cadence or self._segment % 2 == 0

    def _tone_frame(self) -> Frame:
        if self._table is not None:
            frame: Frame = self._table[self._frame_no % len(self._table)]
            return frame
        assert self._osc is not None
        return _readonly(_to_int16(self._osc.next()))

    def next_frame(self) -> Frame:
        """The next 20 ms of the tone."""
        tone = self._tone_frame()
        self._frame_no += 1
        if not self._cadence:
            return tone
        on = self._segment % 2 == 0
        length = self._cadence[self._segment]
        first, last = self._segment_pos == 0, self._segment_pos == length - 1
        self._segment_pos += 1
        if self._segment_pos == length:
            self._segment = (self._segment + 1) % len(self._cadence)
            self._segment_pos = 0
        if not on:
            return SILENCE
        if not (first or last):
            return tone
        shaped = tone.astype(np.float64)
        if first:
            shaped *= _FADE_IN
        if last:
            shaped *= _FADE_OUT
        return _readonly(_to_int16(shaped))

    def frames(self, count: int) -> Frame:
        """The next `count` frames as one (count, 160) array (a convenience for tests and
        prompt rendering; the engine calls `next_frame` once per tick)."""
        out = np.empty((count, SAMPLES_PER_FRAME), dtype=np.int16)
        for i in range(count):
            out[i] = self.next_frame()
        return out


# --- DTMF --------------------------------------------------------------------------------

DTMF_ROWS: Final = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS: Final = (1209.0, 1336.0, 1477.0, 1633.0)
# Keypad order: DTMF_KEYS[4 * row + col].
DTMF_KEYS: Final = "123A456B789C*0#D"
DTMF_FREQUENCIES: Final[Mapping[str, tuple[float, float]]] = {
    key: (DTMF_ROWS[i // 4], DTMF_COLS[i % 4]) for i, key in enumerate(DTMF_KEYS)
}


def dtmf_signal(
    digits: str,
    *,
    tone_ms: float = 100.0,
    gap_ms: float = 100.0,
    level_dbfs: float = -10.0,
    twist_db: float = 0.0,
    sample_rate: int = SAMPLE_RATE,
) -> Frame:
    """In-band DTMF for `digits`: each key is a tone of `tone_ms` followed by `gap_ms` of
    silence. `level_dbfs` is the low-group level; the high group is `twist_db` louder
    (senders often pre-emphasise it by about 2 dB). Split into frames with `frames_of`."""
    tone_len = round(tone_ms * sample_rate / 1000.0)
    gap_len = round(gap_ms * sample_rate / 1000.0)
    try:
        pairs = np.array([DTMF_FREQUENCIES[d] for d in digits.upper()], dtype=np.float64)
    except KeyError as exc:
        raise ToneError(f"not a DTMF key: {exc.args[0]!r}") from None
    out = np.zeros((len(digits), tone_len + gap_len), dtype=np.float64)
    if len(digits) and tone_len:
        t = np.arange(tone_len, dtype=np.float64) / sample_rate
        low = dbfs_to_amplitude(level_dbfs)
        high = dbfs_to_amplitude(level_dbfs + twist_db)
        out[:, :tone_len] = low * np.sin(2.0 * np.pi * np.outer(pairs[:, 0], t)) + high * np.sin(
            2.0 * np.pi * np.outer(pairs[:, 1], t)
        )
    return _to_int16(out.reshape(-1))


def frames_of(samples: PCM) -> NDArray[np.int16]:
    """`samples` as (n, 160) frames, the last one padded with silence."""
    count = -(-len(samples) // SAMPLES_PER_FRAME)
    out = np.zeros(count * SAMPLES_PER_FRAME, dtype=np.int16)
    out[: len(samples)] = samples
    return out.reshape(count, SAMPLES_PER_FRAME)


# --- Measurement -------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _dft_basis(freqs: tuple[float, ...], n: int, sample_rate: int) -> FloatArray:
    # Goertzel's |s1^2 + s2^2 - 2cos(w)s1s2| equals |sum x[n] e^{-jwn}|^2 exactly, so the
    # recursion (a per-sample loop) can be replaced by two dot products per frequency.
    # Scaled by 2/(N * 32768) so that a sine of peak A (full scale = 1) reads A^2.
    angles = np.outer(np.arange(n, dtype=np.float64), 2.0 * np.pi * np.asarray(freqs) / sample_rate)
    basis = np.concatenate((np.cos(angles), np.sin(angles)), axis=1) * (2.0 / (n * 32768.0))
    basis.flags.writeable = False
    return basis


class Goertzel:
    """Powers at several fixed frequencies over blocks of `n` samples, from a precomputed basis.

    `powers(x)` takes one block (n,) or a stack of blocks (b, n) and returns, per block and
    frequency, the squared peak amplitude relative to full scale: 10*log10 of it is the level
    in dBFS of a sine at that frequency. A rectangular window: resolution is sample_rate / n.
    """

    __slots__ = ("_basis", "freqs", "n")

    def __init__(self, freqs: Sequence[float], n: int, sample_rate: int = SAMPLE_RATE) -> None:
        self.freqs = tuple(float(f) for f in freqs)
        self.n = n
        self._basis = _dft_basis(self.freqs, n, sample_rate)

    def powers(self, block: NDArray[np.generic]) -> FloatArray:
        proj = np.asarray(block, dtype=np.float64) @ self._basis
        k = len(self.freqs)
        re, im = proj[..., :k], proj[..., k:]
        result: FloatArray = re * re + im * im
        return result


def goertzel_power(
    samples: NDArray[np.generic], freq: float, sample_rate: int = SAMPLE_RATE
) -> float:
    """Power of `samples` at `freq` as squared peak amplitude (full scale = 1.0); see Goertzel."""
    return float(Goertzel((freq,), len(samples), sample_rate).powers(samples)[0])


def rms_dbfs(samples: NDArray[np.generic]) -> float:
    """RMS level in dBFS, referenced like tone levels (a full-scale sine reads 0 dBFS)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return -math.inf
    mean_square = float(np.mean(x * x)) * 2.0 / (FULL_SCALE * FULL_SCALE)
    return 10.0 * math.log10(mean_square) if mean_square > 0.0 else -math.inf


def _spectrum(samples: NDArray[np.generic]) -> tuple[FloatArray, int]:
    """Power spectrum of the Hann-windowed, mean-removed, zero-padded signal, and the FFT size.

    Hann keeps leakage from a strong tone 4 bins away 40 dB down, which is what lets one
    20 ms frame tell 500 Hz from 700 Hz in a mix; padding to >= 2048 points samples the
    spectrum finely enough for band sums and the parabolic peak fit."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    x = (x - x.mean()) * np.hanning(len(x))
    n_fft = max(2048, 1 << (2 * len(x) - 1).bit_length())
    spec = np.abs(np.fft.rfft(x, n_fft))
    return spec * spec, n_fft


def dominant_frequency(samples: NDArray[np.generic], sample_rate: int = SAMPLE_RATE) -> float:
    """Frequency in Hz of the strongest spectral peak (0.0 for silence or DC only).

    Accurate to about a hertz on one 20 ms frame of a clean tone (parabolic interpolation of
    the log spectrum around the peak bin)."""
    if len(samples) < 4:
        raise ToneError("need at least 4 samples")
    power, n_fft = _spectrum(samples)
    k = int(np.argmax(power[1:-1])) + 1
    if power[k] <= 0.0:
        return 0.0
    a, b, c = np.log(power[k - 1 : k + 2] + 1e-300)
    denom = a - 2.0 * b + c
    offset = 0.5 * (a - c) / denom if denom < 0.0 else 0.0
    return float((k + offset) * sample_rate / n_fft)


def detect_tone(
    samples: NDArray[np.generic],
    freq: float,
    *,
    sample_rate: int = SAMPLE_RATE,
    min_fraction: float = 0.1,
    min_dbfs: float = -55.0,
    tolerance_hz: float = 10.0,
) -> bool:
    """Whether a tone at `freq` is present in `samples` (one 20 ms frame or longer).

    Present means: the energy within +-1 bin of `freq` (sample_rate / len, so 50 Hz for one
    frame; widened to +-`tolerance_hz` for long windows, whose bins get narrower than clock
    error) holds at least `min_fraction` of the signal's energy, and the tone is at least
    `min_dbfs` loud (so G.711 idle-channel noise never counts). A Hann window puts 91 % of a
    tone's energy within +-1 bin, 4 % in the band of a frequency 2 bins (100 Hz on one frame)
    away and 0.03 % 3 bins away, so the default -10 dB fraction finds each of up to about six
    equal tones in a mix and tells tones 150 Hz apart within one frame. Robust to G.711
    quantisation, moderate noise (10 dB SNR) and levels of -40..0 dBFS.
    """
    if len(samples) < 4:
        raise ToneError("need at least 4 samples")
    power, n_fft = _spectrum(samples)
    total = float(power.sum())
    if total <= 0.0:
        return False
    half_width = max(sample_rate / len(samples), tolerance_hz)
    bin_hz = sample_rate / n_fft
    lo = max(0, math.ceil((freq - half_width) / bin_hz))
    hi = min(len(power) - 1, math.floor((freq + half_width) / bin_hz))
    band = float(power[lo : hi + 1].sum())
    if band < min_fraction * total:
        return False
    # Level of the band's content as a sine: total windowed energy scales like mean square.
    level = rms_dbfs(samples) + 10.0 * math.log10(band / total)
    return level >= min_dbfs
