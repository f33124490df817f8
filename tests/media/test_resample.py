"""Resampling to 8 kHz: tones keep frequency and level, aliases are rejected, sox agrees."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from callcenter.media.frame import MediaError
from callcenter.media.resample import ResampleError, resample, to_8k_mono, to_mono
from callcenter.media.wav import decode_wav, encode_wav

RATES = [48000, 44100, 32000, 24000, 22050, 16000, 11025, 6000]


def tone(
    frequency: float, rate: int, seconds: float = 1.0, amplitude: float = 10000.0
) -> NDArray[np.int16]:
    t = np.arange(round(rate * seconds)) / rate
    samples: NDArray[np.int16] = np.rint(amplitude * np.sin(2 * np.pi * frequency * t)).astype(
        np.int16
    )
    return samples


def peak(samples: NDArray[np.int16], rate: int = 8000) -> tuple[float, float]:
    """Frequency (Hz) and amplitude of the strongest component, edges trimmed, Hann window."""
    body = samples[200:-200].astype(np.float64)
    window = np.hanning(len(body))
    spectrum = np.abs(np.fft.rfft(body * window))
    index = int(np.argmax(spectrum))
    return index * rate / len(body), float(spectrum[index] * 2 / window.sum())


def db(ratio: float) -> float:
    return 20 * float(np.log10(max(ratio, 1e-12)))


@pytest.mark.parametrize("rate", RATES)
def test_a_1khz_tone_keeps_its_frequency_and_level(rate: int) -> None:
    out = resample(tone(1000, rate), rate)
    frequency, amplitude = peak(out)
    assert frequency == pytest.approx(1000, abs=1)
    assert abs(db(amplitude / 10000)) < 0.1  # the brief asks ±1 dB; the pass band is flat


@pytest.mark.parametrize("frequency", [300, 2000, 3400])
def test_the_telephone_band_passes_flat(frequency: int) -> None:
    frequency_out, amplitude = peak(resample(tone(frequency, 44100), 44100))
    assert frequency_out == pytest.approx(frequency, abs=1)
    assert abs(db(amplitude / 10000)) < 0.1


@pytest.mark.parametrize(
    ("rate", "frequency"),
    [(48000, 5000), (48000, 4100), (44100, 6000), (16000, 4500), (22050, 10000)],
)
def test_frequencies_above_4khz_are_rejected(rate: int, frequency: int) -> None:
    # They would alias to 8000 - f (5 kHz -> 3 kHz), right in the telephone band.
    out = resample(tone(frequency, rate, amplitude=30000), rate)
    rms = float(np.sqrt(np.mean(out[200:-200].astype(np.float64) ** 2)))
    assert db(rms * np.sqrt(2) / 30000) < -60  # brief: >= 40 dB; designed for 70 dB


@pytest.mark.parametrize("rate", [*RATES, 8001, 44101, 7999])
@pytest.mark.parametrize("length", [0, 1, 2, 159, 160, 1001])
def test_output_length_is_the_exact_ratio_rounded_up(rate: int, length: int) -> None:
    pcm = np.ones(length, dtype=np.int16)
    assert len(resample(pcm, rate)) == -(-length * 8000 // rate)


def test_same_rate_is_an_identity_copy() -> None:
    pcm = np.random.default_rng(1).integers(-32768, 32768, 1234).astype(np.int16)
    out = resample(pcm, 8000)
    np.testing.assert_array_equal(out, pcm)
    assert out is not pcm


def test_full_scale_saturates_instead_of_wrapping() -> None:
    square = np.where(tone(500, 48000) >= 0, 32767, -32768).astype(np.int16)
    out = resample(square, 48000)
    # Gibbs overshoot past full scale must clip, not wrap to the opposite sign.
    assert out.max() == 32767 and out.min() == -32768
    signs = np.sign(out[100:-100].astype(np.int32))
    changes = np.count_nonzero(np.diff(signs[signs != 0]))
    assert changes == pytest.approx(2 * 500 * (len(out) - 200) / 8000, abs=2)


def test_dc_keeps_its_level() -> None:
    out = resample(np.full(4410, 12345, dtype=np.int16), 44100)
    assert set(out[100:-100].tolist()) == {12345}


def test_an_odd_rate_converts_exactly_and_fast() -> None:
    # 44101 Hz shares no factor with 8000: 8000 phases. Still exact and quick.
    started = time.perf_counter()
    out = resample(tone(1000, 44101), 44101)
    assert time.perf_counter() - started < 2.0
    frequency, amplitude = peak(out)
    assert frequency == pytest.approx(1000, abs=1)
    assert abs(db(amplitude / 10000)) < 0.1


def test_a_minute_at_48khz_converts_well_under_a_second() -> None:
    pcm = tone(1000, 48000, seconds=60)
    started = time.perf_counter()
    out = resample(pcm, 48000)
    assert time.perf_counter() - started < 1.0
    assert len(out) == 60 * 8000


def test_upsampling_rejects_images() -> None:
    out = resample(tone(1000, 6000, amplitude=20000), 6000, 8000)
    spectrum = np.abs(np.fft.rfft(out[200:-200] * np.hanning(len(out) - 400)))
    frequencies = np.fft.rfftfreq(len(out) - 400, 1 / 8000)
    image = spectrum[(frequencies > 3100)].max()  # 1 kHz images at 5 kHz fold to 3 kHz... none
    assert db(image / spectrum.max()) < -60


def test_to_mono_averages_channels() -> None:
    stereo = np.array([[100, 300], [-32768, -32768], [32767, 32767], [1, 2]], dtype=np.int16)
    np.testing.assert_array_equal(to_mono(stereo), [200, -32768, 32767, 2])
    mono = np.array([1, 2, 3], dtype=np.int16)
    assert to_mono(mono) is mono
    np.testing.assert_array_equal(to_mono(mono.reshape(-1, 1)), mono)
    six = np.tile(np.arange(6, dtype=np.int16) * 10, (5, 1))
    np.testing.assert_array_equal(to_mono(six), [25] * 5)


def test_to_8k_mono_downmixes_then_resamples() -> None:
    left, right = tone(1000, 16000, amplitude=8000), tone(1000, 16000, amplitude=12000)
    out = to_8k_mono(np.stack([left, right], axis=1), 16000)
    frequency, amplitude = peak(out)
    assert frequency == pytest.approx(1000, abs=1)
    assert abs(db(amplitude / 10000)) < 0.1


@pytest.mark.parametrize(
    ("pcm", "rate_in", "rate_out"),
    [
        (np.zeros(10, dtype=np.float32), 16000, 8000),
        (np.zeros((10, 2), dtype=np.int16), 16000, 8000),
        (np.zeros(10, dtype=np.int16), 999, 8000),
        (np.zeros(10, dtype=np.int16), 16000, 192001),
        (np.zeros(10, dtype=np.int16), 0, 8000),
    ],
)
def test_bad_input_raises_resample_error(
    pcm: NDArray[np.generic], rate_in: int, rate_out: int
) -> None:
    with pytest.raises(ResampleError):
        resample(pcm, rate_in, rate_out)  # type: ignore[arg-type]
    assert issubclass(ResampleError, MediaError)


def test_to_mono_refuses_three_dimensions() -> None:
    with pytest.raises(ResampleError):
        to_mono(np.zeros((2, 2, 2), dtype=np.int16))


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 16000])
def test_agrees_with_sox_on_band_limited_audio(tmp_path: Path, rate: int) -> None:
    assert shutil.which("sox") is not None, "sox not found: run `make test` as root to install it"
    # Several tones inside both filters' pass bands: any difference is filter error or a
    # misalignment in time, which would show up as a large residual.
    t = np.arange(rate * 2) / rate
    mix = sum(0.2 * np.sin(2 * np.pi * f * t + f) for f in (220, 697, 1209, 2500, 3300))
    pcm = np.rint(mix * 32767).astype(np.int16)
    source, target = tmp_path / "in.wav", tmp_path / "out.wav"
    source.write_bytes(encode_wav(pcm, rate))
    subprocess.run(["sox", "-V1", str(source), "-D", "-r", "8000", str(target)], check=True)
    theirs = decode_wav(target.read_bytes()).samples.astype(np.float64)
    ours = resample(pcm, rate).astype(np.float64)
    assert len(ours) == len(theirs)
    body = slice(400, -400)  # the filters differ in how they treat the edges
    residual = ours[body] - theirs[body]
    snr = db(float(np.sqrt(np.mean(theirs[body] ** 2)) / np.sqrt(np.mean(residual**2))))
    assert snr > 60
