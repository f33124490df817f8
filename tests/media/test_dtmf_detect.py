"""In-band DTMF: one digit per press through G.711 and noise, none from speech or music."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from callcenter.media.dtmf_detect import BLOCK, DtmfDetector, classify_blocks
from callcenter.media.frame import SAMPLE_RATE, SAMPLES_PER_FRAME
from callcenter.media.g711 import ulaw_decode, ulaw_encode
from callcenter.media.tones import DTMF_FREQUENCIES, DTMF_KEYS, dbfs_to_amplitude, dtmf_signal


def detect(samples: NDArray[np.int16], frame: int = SAMPLES_PER_FRAME) -> str:
    detector = DtmfDetector()
    padded = np.concatenate((samples, np.zeros(-len(samples) % frame, dtype=np.int16)))
    return "".join(d for chunk in padded.reshape(-1, frame) for d in detector.feed(chunk))


def channel(signal: NDArray[np.generic], snr_db: float | None, seed: int) -> NDArray[np.int16]:
    """White noise at `snr_db` below the tones' power, then a µ-law round trip."""
    x = np.asarray(signal, dtype=np.float64)
    if snr_db is not None:
        tone_power = float(np.mean(x[x != 0] ** 2)) if x.any() else 1.0
        sigma = math.sqrt(tone_power / 10.0 ** (snr_db / 10.0))
        x = x + np.random.default_rng(seed).standard_normal(len(x)) * sigma
    pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm))


def silence_ms(ms: float) -> NDArray[np.float64]:
    return np.zeros(round(ms * SAMPLE_RATE / 1000))


def key_string(
    digits: str, rng: np.random.Generator, level: float, twist_db: float = 0.0
) -> NDArray[np.float64]:
    """Each key with its own random tone and gap of 40-100 ms, after an unaligned lead-in."""
    parts = [silence_ms(float(rng.uniform(0.0, 60.0)))]
    for d in digits:
        tone_ms, gap_ms = rng.uniform(40.0, 100.0, size=2)
        parts.append(
            dtmf_signal(
                d,
                tone_ms=float(tone_ms),
                gap_ms=float(gap_ms),
                level_dbfs=level,
                twist_db=twist_db,
            ).astype(np.float64)
        )
    parts.append(silence_ms(100.0))
    return np.concatenate(parts)


def tone(freqs: list[float], level: float, ms: float, phase: float = 0.0) -> NDArray[np.float64]:
    t = np.arange(round(ms * SAMPLE_RATE / 1000)) / SAMPLE_RATE
    amp = dbfs_to_amplitude(level)
    return np.asarray(sum(amp * np.sin(2 * np.pi * f * t + phase) for f in freqs))


# --- Detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_all_keys_through_ulaw_at_20_db_snr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    digits = "".join(rng.permutation(list(DTMF_KEYS)))
    level = float(rng.uniform(-33.0, -9.0))  # per tone; -9 dBFS pairs peak just under 0 dBFS
    assert detect(channel(key_string(digits, rng, level), 20.0, seed)) == digits


@pytest.mark.parametrize("offset", range(0, 160, 9))
def test_shortest_tones_and_gaps_at_every_alignment(offset: int) -> None:
    signal = np.concatenate(
        (silence_ms(offset / 8), dtmf_signal(DTMF_KEYS * 2, tone_ms=40, gap_ms=40), silence_ms(80))
    )
    assert detect(channel(signal, 20.0, offset)) == DTMF_KEYS * 2


def test_repeated_key_needs_the_gap_and_gets_one_digit_per_press() -> None:
    signal = dtmf_signal("5555", tone_ms=50, gap_ms=45, level_dbfs=-15.0)
    assert detect(channel(signal.astype(np.float64), 20.0, 1)) == "5555"


def test_other_frame_sizes_give_the_same_digits() -> None:
    signal = channel(key_string("0123456789*#", np.random.default_rng(7), -12.0), 20.0, 7)
    for frame in (80, 160, 240, 1000):
        assert detect(signal, frame) == "0123456789*#"


@pytest.mark.parametrize(("twist_db", "expected"), [(-8.0, "9"), (-6.0, "9"), (4.0, "9")])
def test_twist_within_limits_is_accepted(twist_db: float, expected: str) -> None:
    signal = dtmf_signal("9", tone_ms=80, gap_ms=80, level_dbfs=-12.0, twist_db=twist_db)
    assert detect(channel(signal.astype(np.float64), 25.0, 2)) == expected


@pytest.mark.parametrize("twist_db", [-12.0, 10.0])
def test_excessive_twist_is_rejected(twist_db: float) -> None:
    signal = dtmf_signal("9", tone_ms=200, gap_ms=80, level_dbfs=-12.0, twist_db=twist_db)
    assert detect(channel(signal.astype(np.float64), None, 2)) == ""


def test_quiet_tones_are_ignored_and_faint_ones_heard() -> None:
    quiet = dtmf_signal("147", tone_ms=80, gap_ms=80, level_dbfs=-45.0)
    assert detect(channel(quiet.astype(np.float64), None, 0)) == ""
    faint = dtmf_signal("147", tone_ms=80, gap_ms=80, level_dbfs=-33.0)
    assert detect(channel(faint.astype(np.float64), 20.0, 0)) == "147"


def test_tone_of_20_ms_is_too_short_at_any_alignment() -> None:
    for offset in range(0, BLOCK, 3):
        signal = np.concatenate((silence_ms(offset / 8), dtmf_signal("8", tone_ms=20, gap_ms=60)))
        assert detect(channel(signal, None, 0)) == ""


def test_key_held_for_two_seconds_is_one_digit() -> None:
    signal = dtmf_signal("#", tone_ms=2000, gap_ms=100, level_dbfs=-10.0)
    assert detect(channel(signal.astype(np.float64), 20.0, 4)) == "#"


def test_dropout_of_10_ms_does_not_split_a_press() -> None:
    for start in range(2000, 2000 + BLOCK, 7):
        signal = dtmf_signal("6", tone_ms=500, gap_ms=100, level_dbfs=-10.0).astype(np.float64)
        signal[start : start + 80] = 0.0
        assert detect(channel(signal, 20.0, start)) == "6"


def test_rolling_from_key_to_key_without_a_gap() -> None:
    signal = np.concatenate((dtmf_signal("1", gap_ms=0), dtmf_signal("2", gap_ms=100)))
    assert detect(channel(signal, 20.0, 0)) == "12"


def test_reset_forgets_the_held_key() -> None:
    frames = channel(dtmf_signal("3", tone_ms=400, gap_ms=0), None, 0).reshape(-1, 160)
    detector = DtmfDetector()
    assert [d for f in frames[:10] for d in detector.feed(f)] == ["3"]
    detector.reset()
    assert [d for f in frames[10:] for d in detector.feed(f)] == ["3"]


# --- No talk-off --------------------------------------------------------------------------


def test_chirp_through_the_band_gives_no_digit() -> None:
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    # Linear sweep 300 -> 3400 Hz over 3 s, then back.
    phase = 2 * np.pi * (300 * t + (3100 / 6) * t * t)
    sweep = dbfs_to_amplitude(-6.0) * np.sin(phase)
    both = np.concatenate((sweep, sweep[::-1]))
    assert detect(channel(both, 30.0, 0)) == ""


@pytest.mark.parametrize(
    "pair",
    [
        (1000.0, 1500.0),  # between rows and near a column
        (697.0, 1000.0),  # a row with a non-DTMF partner
        (1209.0, 1477.0),  # two columns
        (697.0, 852.0),  # two rows
        (800.0, 1400.0),
        (350.0, 440.0),  # dial tone
        (440.0, 480.0),  # ringback
        (480.0, 620.0),  # busy
    ],
)
def test_non_dtmf_pairs_give_no_digit(pair: tuple[float, float]) -> None:
    assert detect(channel(tone(list(pair), -10.0, 1000), 30.0, 0)) == ""


@pytest.mark.parametrize("key", list(DTMF_KEYS))
def test_frequency_tolerance(key: str) -> None:
    # Q.24: operate within 1.5 % + 2 Hz of nominal, never beyond 3.5 %.
    row, col = DTMF_FREQUENCIES[key]
    for sr, sc in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        near = [row * (1 + sr * 0.015) + 2 * sr, col * (1 + sc * 0.015) + 2 * sc]
        assert detect(channel(tone(near, -12.0, 60), 20.0, 0)) == key
        far = [row * (1 + sr * 0.04), col * (1 + sc * 0.04)]
        assert detect(channel(tone(far, -12.0, 500), 20.0, 0)) == ""


def harmonic_tone(
    f0: NDArray[np.float64], weights: list[float], level: float
) -> NDArray[np.float64]:
    """A voice- or instrument-like tone: harmonics k*f0 (f0 may glide) with given weights."""
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    audible = [(k + 1, w) for k, w in enumerate(weights) if (k + 1) * f0.max() < 3900]
    x: NDArray[np.float64] = np.sum([w * np.sin(k * phase) for k, w in audible], axis=0)
    scaled: NDArray[np.float64] = x * (dbfs_to_amplitude(level) / np.max(np.abs(x)))
    return scaled


@pytest.mark.parametrize("f0", [110.0, 139.4, 174.25, 220.0, 232.33, 241.67, 348.5])
def test_music_like_harmonics_give_no_digit(f0: float) -> None:
    # Steady notes whose harmonics fall on DTMF rows and columns (139.4 * 5 = 697,
    # 241.67 * 5 ~ 1209 ...), with a bright, slowly decaying spectrum.
    weights = [1.0 / math.sqrt(k) for k in range(1, 30)]
    note = harmonic_tone(np.full(SAMPLE_RATE, f0), weights, -6.0)
    assert detect(channel(note, 30.0, 0)) == ""


def test_chords_give_no_digit() -> None:
    t = np.full(SAMPLE_RATE, 1.0)
    weights = [1.0, 0.5, 0.33, 0.25]
    for notes in ([261.6, 329.6, 392.0], [220.0, 277.2, 329.6, 440.0], [348.5, 604.5]):
        chord = sum(harmonic_tone(t * n, weights, -12.0) for n in notes)
        assert detect(channel(np.asarray(chord), 30.0, 0)) == ""


@pytest.mark.parametrize("formants", [(730, 1090), (530, 1840), (270, 2290), (640, 1190)])
def test_vowels_with_gliding_pitch_give_no_digit(formants: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(formants))
    for _ in range(4):
        start, end = rng.uniform(90.0, 260.0, size=2)
        f0 = np.linspace(start, end, 2 * SAMPLE_RATE)
        # Harmonic k is weighted by a two-formant envelope (resonances 100 Hz wide).
        ks = np.arange(1, 40)
        mean_f0 = (start + end) / 2
        envelope = sum(1.0 / (1.0 + ((ks * mean_f0 - f) / 100.0) ** 2) for f in formants)
        vowel = harmonic_tone(f0, list(np.asarray(envelope) / ks**0.5), -8.0)
        assert detect(channel(vowel, 30.0, 0)) == ""


def test_white_noise_gives_no_digit() -> None:
    noise = np.random.default_rng(5).standard_normal(5 * SAMPLE_RATE) * dbfs_to_amplitude(-15.0)
    assert detect(channel(noise, None, 0)) == ""


def test_second_harmonics_reject_an_otherwise_perfect_pair() -> None:
    # "0" (941 + 1336 Hz): its row harmonic (1882 Hz) is clear of every column. For rows
    # 697 and 770 the harmonic bin sits within 63 Hz of a column and the check must allow
    # for that column's leakage, so there the 80 % energy test does most of the work.
    row, col = DTMF_FREQUENCIES["0"]
    clean = tone([row, col], -10.0, 400)
    strong = clean + tone([2 * row, 2 * col], -18.0, 400)  # 8 dB below: an instrument
    weak = clean + tone([2 * row, 2 * col], -35.0, 400)  # 25 dB below: distortion
    assert detect(channel(strong, None, 0)) == ""
    assert detect(channel(weak, None, 0)) == "0"
    only_row_harmonic = clean + tone([2 * row], -18.0, 400)
    assert detect(channel(only_row_harmonic, None, 0)) == ""


@pytest.mark.parametrize("key", list(DTMF_KEYS))
def test_each_key_classifies_with_the_worst_leaking_neighbour(key: str) -> None:
    # Reverse twist makes the column leak most into the row's harmonic bin (1394 vs 1336 Hz):
    # the harmonic check must discount that leakage rather than reject the key. (3 dB, not
    # the 6 dB limit: one block's estimate of a level moves by +-1.5 dB with phase.)
    row, col = DTMF_FREQUENCIES[key]
    for phase in np.linspace(0.0, 2 * np.pi, 8, endpoint=False):
        block = tone([row], -12.0, 1000, phase)[:BLOCK] + tone([col], -9.0, 1000)[:BLOCK]
        [(found, _)] = classify_blocks(block.reshape(1, BLOCK))
        assert found == key
