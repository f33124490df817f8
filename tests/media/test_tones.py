"""Tone generation and the measurement helpers other tests use to prove audio."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from callcenter.media.frame import SAMPLE_RATE, SAMPLES_PER_FRAME
from callcenter.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callcenter.media.tones import (
    BUSY,
    DIAL_TONE,
    DTMF_COLS,
    DTMF_FREQUENCIES,
    DTMF_KEYS,
    DTMF_ROWS,
    RINGBACK,
    Goertzel,
    ToneError,
    ToneGenerator,
    dbfs_to_amplitude,
    detect_tone,
    dominant_frequency,
    dtmf_signal,
    frames_of,
    goertzel_power,
    rms_dbfs,
)


def sine(freq: float, level_dbfs: float, n: int, phase: float = 0.0) -> NDArray[np.float64]:
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    return dbfs_to_amplitude(level_dbfs) * np.sin(2.0 * np.pi * freq * t + phase)


def to_int16(x: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def with_noise(x: NDArray[np.float64], snr_db: float, seed: int) -> NDArray[np.float64]:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    power = float(np.mean(x * x))
    return x + noise * math.sqrt(power / 10.0 ** (snr_db / 10.0))


def ulaw(x: NDArray[np.int16]) -> NDArray[np.int16]:
    return ulaw_decode(ulaw_encode(x))


def max_step(freqs: tuple[float, ...], level_dbfs: float) -> float:
    """Largest sample-to-sample change a clean sum of these sines can make, plus rounding."""
    amp = dbfs_to_amplitude(level_dbfs)
    return sum(amp * 2.0 * math.sin(math.pi * f / SAMPLE_RATE) for f in freqs) + 1.0


# --- ToneGenerator -----------------------------------------------------------------------


@pytest.mark.parametrize("freq", [300.0, 697.0, 1000.0, 1000.5, 2222.25, 3400.0])
def test_single_tone_frequency_and_level(freq: float) -> None:
    samples = ToneGenerator([freq], -12.0).frames(50).reshape(-1)
    assert samples.dtype == np.int16
    assert abs(dominant_frequency(samples) - freq) < 0.05
    assert abs(dominant_frequency(samples[:SAMPLES_PER_FRAME]) - freq) < 2.0
    assert 10.0 * math.log10(goertzel_power(samples, freq)) == pytest.approx(-12.0, abs=0.05)
    assert rms_dbfs(samples) == pytest.approx(-12.0, abs=0.05)


@pytest.mark.parametrize(
    "freqs",
    [(1000.0,), (1000.5,), (3999.0,), (440.0, 480.0), (350.0, 440.0), (697.0, 1209.0, 1633.3)],
)
def test_phase_continuous_across_frames(freqs: tuple[float, ...]) -> None:
    """Concatenated frames match one long sine to the rounding, so no frame edge clicks,
    however long the call (500 frames = 10 s, enough for phase drift to show)."""
    frames = ToneGenerator(freqs, -10.0).frames(500)
    samples = frames.reshape(-1).astype(np.float64)
    reference = sum(sine(f, -10.0, len(samples)) for f in freqs)
    assert np.max(np.abs(samples - reference)) <= 1.0
    assert np.max(np.abs(np.diff(samples))) <= max_step(freqs, -10.0)


def test_sum_of_sines_levels_are_per_component() -> None:
    samples = ToneGenerator([440.0, 480.0], -20.0).frames(50).reshape(-1)
    for f in (440.0, 480.0):
        assert 10.0 * math.log10(goertzel_power(samples, f)) == pytest.approx(-20.0, abs=0.05)
        assert detect_tone(samples, f)


def test_loud_sum_saturates_instead_of_wrapping() -> None:
    samples = ToneGenerator([1000.0, 1000.5], 0.0).frames(100).reshape(-1)
    reference = sine(1000.0, 0.0, len(samples)) + sine(1000.5, 0.0, len(samples))
    assert np.array_equal(samples, to_int16(reference))
    assert samples.max() == 32767 and samples.min() == -32768


def test_frames_are_read_only() -> None:
    for gen in (ToneGenerator([1000.0]), ToneGenerator([1000.5]), ToneGenerator.from_spec(BUSY)):
        frame = gen.next_frame()
        assert frame.shape == (SAMPLES_PER_FRAME,)
        assert not frame.flags.writeable


def test_busy_cadence_counts_frames() -> None:
    gen = ToneGenerator.from_spec(BUSY)
    frames = gen.frames(200)  # four cycles of 25 frames on, 25 off
    on = np.abs(frames).max(axis=1) > 0
    expected = np.tile(np.repeat([True, False], 25), 4)
    assert np.array_equal(on, expected)
    # Off periods are digital silence; on periods carry both tones at the spec level.
    burst = frames[1:24].reshape(-1)
    for f in BUSY.freqs:
        level = 10.0 * math.log10(goertzel_power(burst, f))
        assert level == pytest.approx(BUSY.level_dbfs, abs=0.1)


def test_ringback_cadence_and_reset() -> None:
    gen = ToneGenerator.from_spec(RINGBACK)
    assert gen.is_on
    frames = gen.frames(300)
    on = np.abs(frames).max(axis=1) > 0
    assert on[:100].all() and not on[100:].any()
    assert gen.is_on  # the next frame starts the second ring
    gen.frames(7)
    gen.reset()
    assert np.array_equal(gen.frames(300), frames)


def test_cadence_edges_are_faded_not_clicked() -> None:
    gen = ToneGenerator([480.0, 620.0], -3.0, cadence_ms=(60, 40, 20, 40))
    samples = gen.frames(400).reshape(-1).astype(np.float64)
    assert np.max(np.abs(np.diff(samples))) <= max_step((480.0, 620.0), -3.0)
    # Each burst starts and ends near zero rather than wherever the oscillator is; the
    # cadence repeats every 8 frames with bursts in frames 0-2 and 5.
    for cycle in range(0, 400, 8):
        for first, last in ((cycle, cycle + 2), (cycle + 5, cycle + 5)):
            assert abs(samples[first * 160]) < 0.01 * dbfs_to_amplitude(-3.0)
            assert abs(samples[last * 160 + 159]) < 0.01 * dbfs_to_amplitude(-3.0)


def test_continuous_spec_never_stops() -> None:
    frames = ToneGenerator.from_spec(DIAL_TONE).frames(100)
    assert (np.abs(frames).max(axis=1) > 0).all()


@pytest.mark.parametrize(
    ("freqs", "cadence"),
    [([], ()), ([4000.0], ()), ([0.0], ()), ([440.0], (100,)), ([440.0], (30, 20))],
)
def test_invalid_tones_are_refused(freqs: list[float], cadence: tuple[int, ...]) -> None:
    with pytest.raises(ToneError):
        ToneGenerator(freqs, cadence_ms=cadence)


# --- DTMF generation ----------------------------------------------------------------------


def test_dtmf_table_is_the_keypad() -> None:
    assert DTMF_KEYS == "123A456B789C*0#D"
    assert DTMF_FREQUENCIES["1"] == (697.0, 1209.0)
    assert DTMF_FREQUENCIES["0"] == (941.0, 1336.0)
    assert DTMF_FREQUENCIES["#"] == (941.0, 1477.0)
    assert DTMF_FREQUENCIES["D"] == (941.0, 1633.0)
    assert set(DTMF_FREQUENCIES.values()) == {(r, c) for r in DTMF_ROWS for c in DTMF_COLS}


def test_dtmf_signal_layout_and_content() -> None:
    signal = dtmf_signal("15#", tone_ms=60, gap_ms=40, level_dbfs=-10.0)
    assert len(signal) == 3 * 800
    bank = Goertzel(DTMF_ROWS + DTMF_COLS, 480)
    for i, key in enumerate("15#"):
        tone = signal[i * 800 : i * 800 + 480]
        gap = signal[i * 800 + 480 : (i + 1) * 800]
        assert not gap.any()
        levels = 10.0 * np.log10(bank.powers(tone))
        expected = {DTMF_FREQUENCIES[key][0], DTMF_FREQUENCIES[key][1]}
        for f, level in zip(bank.freqs, levels, strict=True):
            if f in expected:
                assert level == pytest.approx(-10.0, abs=0.2)
            else:
                assert level < -30.0


def test_dtmf_twist_raises_the_high_group() -> None:
    signal = dtmf_signal("5", tone_ms=100, gap_ms=0, level_dbfs=-12.0, twist_db=2.0)
    assert 10.0 * math.log10(goertzel_power(signal, 770.0)) == pytest.approx(-12.0, abs=0.1)
    assert 10.0 * math.log10(goertzel_power(signal, 1336.0)) == pytest.approx(-10.0, abs=0.1)


def test_dtmf_rejects_unknown_keys() -> None:
    with pytest.raises(ToneError):
        dtmf_signal("12E")


def test_frames_of_pads_the_last_frame() -> None:
    frames = frames_of(np.ones(161, dtype=np.int16))
    assert frames.shape == (2, SAMPLES_PER_FRAME)
    assert frames[1, 0] == 1 and not frames[1, 1:].any()


# --- Goertzel -----------------------------------------------------------------------------


def classic_goertzel(x: NDArray[np.int16], freq: float) -> float:
    """The textbook recursion, sample by sample, normalised like goertzel_power."""
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / SAMPLE_RATE)
    s1 = s2 = 0.0
    for v in x.astype(np.float64) / 32768.0:
        s1, s2 = v + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) * (2.0 / len(x)) ** 2


@pytest.mark.parametrize("k", [1, 7, 14, 20, 33, 79])
def test_goertzel_matches_fft_on_bin_centres(k: int) -> None:
    x = to_int16(with_noise(sine(k * 50.0, -6.0, 160, 0.3) + sine(1234.0, -9.0, 160), 20, k))
    spectrum = np.fft.rfft(x.astype(np.float64) / 32768.0)
    expected = (2.0 * abs(spectrum[k]) / 160) ** 2
    assert goertzel_power(x, k * 50.0) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("freq", [697.0, 941.0, 1209.0, 1633.0, 1000.5, 3333.3])
def test_goertzel_matches_the_recursion(freq: float) -> None:
    x = to_int16(with_noise(sine(freq, -10.0, 205, 1.0), 10, 3))
    assert goertzel_power(x, freq) == pytest.approx(classic_goertzel(x, freq), rel=1e-9)


def test_goertzel_bank_evaluates_blocks_at_once() -> None:
    freqs = (697.0, 1209.0, 1336.0, 2000.0)
    blocks = to_int16(
        np.stack([with_noise(sine(f, -10.0, 102), 10, i) for i, f in enumerate(freqs)])
    )
    powers = Goertzel(freqs, 102).powers(blocks)
    assert powers.shape == (4, 4)
    for b in range(4):
        for j, f in enumerate(freqs):
            assert powers[b, j] == pytest.approx(goertzel_power(blocks[b], f), rel=1e-12)
        assert int(np.argmax(powers[b])) == b


# --- detect_tone / dominant_frequency -------------------------------------------------------


@pytest.mark.parametrize("level", [-40.0, -30.0, -20.0, -10.0, 0.0])
@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
@pytest.mark.parametrize("freq", [700.0, 1000.0, 1300.0])
def test_tone_is_identified_in_one_frame_through_g711_and_noise(
    level: float, codec: str, freq: float
) -> None:
    for seed in range(5):
        x = to_int16(with_noise(sine(freq, level, 8 * 160, seed), 15.0, seed))
        coded = ulaw(x) if codec == "pcmu" else alaw_decode(alaw_encode(x))
        frame = coded[160 * seed : 160 * (seed + 1)]
        for window in (frame, coded):
            assert abs(dominant_frequency(window) - freq) < 8.0
            assert detect_tone(window, freq)
            for other in {700.0, 1000.0, 1300.0} - {freq}:
                assert not detect_tone(window, other)


def test_long_window_is_precise() -> None:
    x = ulaw(to_int16(with_noise(sine(1004.0, -25.0, 8000), 10.0, 1)))
    assert dominant_frequency(x) == pytest.approx(1004.0, abs=0.2)
    assert detect_tone(x, 1000.0)  # within the default 10 Hz tolerance
    assert not detect_tone(x, 1000.0, tolerance_hz=2.0)


def test_four_tone_mix_in_one_frame() -> None:
    freqs = (500.0, 700.0, 1100.0, 1700.0)
    x = ulaw(to_int16(np.sum([sine(f, -15.0, 160, f) for f in freqs], axis=0)))
    for f in freqs:
        assert detect_tone(x, f)
    for f in (300.0, 900.0, 1300.0, 1500.0, 2000.0):
        assert not detect_tone(x, f)


def test_silence_and_idle_noise_hold_no_tone() -> None:
    silence = np.zeros(160, dtype=np.int16)
    assert not detect_tone(silence, 1000.0)
    assert dominant_frequency(silence) == 0.0
    assert rms_dbfs(silence) == -math.inf
    # A-law's idle pattern decodes to +-8: nothing a test should mistake for a tone.
    idle = alaw_decode(bytes([0xD5, 0x55] * 80))
    assert not detect_tone(idle, 1000.0)
    faint = to_int16(sine(1000.0, -62.0, 1600))
    assert not detect_tone(faint, 1000.0)
    assert detect_tone(faint, 1000.0, min_dbfs=-70.0)


def test_measurement_needs_a_few_samples() -> None:
    with pytest.raises(ToneError):
        dominant_frequency(np.zeros(3, dtype=np.int16))
    with pytest.raises(ToneError):
        detect_tone(np.zeros(2, dtype=np.int16), 1000.0)
