"""Prompts and music from WAV files: the cache, the frame sources, and players on real legs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from callcenter.engine.media import (
    FrameSource,
    LegBusy,
    LoopingSource,
    MediaClock,
    MediaEngineError,
    MusicPlayer,
    Prompt,
    PromptCache,
    PromptError,
    PromptPlayer,
    PromptSource,
    RtpLeg,
    RtpPortPool,
    default_hold_music_path,
    load_music,
    music_extension,
    read_prompt,
)
from callcenter.media import (
    PCM,
    SAMPLES_PER_FRAME,
    SILENCE,
    Frame,
    decode_wav,
    detect_tone,
    dominant_frequency,
    encode_wav,
    rms_dbfs,
)

from ..rtp_peer import RtpPeer, negotiate, voiced


def tone(freq: float, seconds: float, rate: int, level: float = 0.3) -> PCM:
    t = np.arange(round(seconds * rate)) / rate
    return np.rint(level * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def stereo_wav(freq: float, seconds: float, rate: int = 44100) -> bytes:
    left = tone(freq, seconds, rate)
    right = (left // 2).astype(np.int16)  # same tone, quieter: the downmix keeps it
    return encode_wav(np.stack([left, right], axis=1), rate, 2)


class FakeLeg:
    """Just what a player touches, recording what it is sent."""

    def __init__(self) -> None:
        self.owner: object | None = None
        self.sent: list[Frame] = []

    def read_frame(self) -> Frame | None:
        return None

    def write_frame(self, frame: Frame) -> None:
        self.sent.append(frame.copy())


def fake_leg() -> tuple[FakeLeg, RtpLeg]:
    leg = FakeLeg()
    return leg, cast(RtpLeg, leg)


def ramp(n: int) -> PCM:
    return (np.arange(n) % 30000 + 1).astype(np.int16)  # never zero, so padding shows


# --- players on real legs ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_prompt_player_plays_a_44k_stereo_wav_at_700hz(
    clock: MediaClock, pool: RtpPortPool, tmp_path: Path
) -> None:
    path = tmp_path / "tone.wav"
    path.write_bytes(stereo_wav(700.0, 0.6))
    prompt = await PromptCache().load(path)
    assert abs(len(prompt) - 0.6 * 8000) <= 1
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    finished = asyncio.Event()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        player = PromptPlayer(leg, prompt, on_done=finished.set)
        assert not player.done
        clock.add(player)
        await asyncio.wait_for(finished.wait(), 2.0)
        assert player.done
        await asyncio.sleep(0.1)  # silence after the prompt
        clock.remove(player)
        heard = voiced(peer.audio())
        assert abs(len(heard) - len(prompt)) <= 2 * SAMPLES_PER_FRAME
        middle = heard[800:-800]
        assert abs(dominant_frequency(middle) - 700.0) <= 10.0
        assert detect_tone(middle, 700.0)
        assert -15.0 < rms_dbfs(middle) < -8.0  # -10.5 dBFS: the mean of 0.3 and 0.15
        assert np.abs(peer.audio()[-SAMPLES_PER_FRAME:]).max() < 50  # then silence
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_music_extension_loops_the_built_in_music(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    music = await load_music()
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        player = music_extension(music)(leg)
        assert isinstance(player, MusicPlayer)
        with pytest.raises(LegBusy):
            MusicPlayer(leg, music)
        clock.add(player)
        await asyncio.sleep(0.3)
        clock.remove(player)
        heard = peer.audio()
        assert len(heard) >= 10 * SAMPLES_PER_FRAME
        assert -35.0 < rms_dbfs(heard) < -12.0
        # µ-law of the first frames of the music: what was sent is the file's start.
        start = music.samples[: len(heard)].astype(np.float64)
        error = heard.astype(np.float64) - start
        assert rms_dbfs(error) < rms_dbfs(start) - 25.0
        player.detach()
        assert leg.owner is None
    finally:
        peer.close()
        await leg.close()


# --- the cache --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cache_hit_is_the_same_object_and_a_changed_file_reloads(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    path.write_bytes(encode_wav(tone(700.0, 0.2, 16000), 16000))
    cache = PromptCache()
    first = await cache.load(path)
    assert await cache.load(str(path)) is first
    assert await cache.load(tmp_path / "." / "p.wav") is first  # by resolved path
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 1)

    # Same size, new content and mtime: only the mtime tells them apart.
    mtime = path.stat().st_mtime_ns
    path.write_bytes(encode_wav(tone(1000.0, 0.2, 16000), 16000))
    os.utime(path, ns=(mtime, mtime + 1_000_000_000))
    second = await cache.load(path)
    assert second is not first
    assert abs(dominant_frequency(second.samples) - 1000.0) <= 10.0
    assert abs(dominant_frequency(first.samples) - 700.0) <= 10.0  # the old one is intact
    assert len(cache) == 1 and cache.nbytes == second.nbytes
    assert await cache.load(path) is second


@pytest.mark.asyncio
async def test_cache_keeps_within_its_byte_budget_least_recently_used_out(
    tmp_path: Path,
) -> None:
    paths = []
    for name in "abc":
        path = tmp_path / f"{name}.wav"
        path.write_bytes(encode_wav(tone(500.0, 0.5, 8000), 8000))
        paths.append(path)
    one = Prompt(tone(500.0, 0.5, 8000)).nbytes
    cache = PromptCache(max_bytes=2 * one)
    a = await cache.load(paths[0])
    await cache.load(paths[1])
    assert await cache.load(paths[0]) is a  # a is now the most recent
    await cache.load(paths[2])  # evicts b
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert await cache.load(paths[0]) is a
    misses = cache.misses
    await cache.load(paths[1])
    assert cache.misses == misses + 1

    small = PromptCache(max_bytes=one // 2)
    big = await small.load(paths[0])  # larger than the budget: returned, not kept
    assert len(big) == 4000 and len(small) == 0 and small.nbytes == 0


@pytest.mark.asyncio
async def test_concurrent_loads_read_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    path.write_bytes(encode_wav(tone(700.0, 1.0, 44100), 44100))
    cache = PromptCache()
    prompts = await asyncio.gather(*(cache.load(path) for _ in range(5)))
    assert all(p is prompts[0] for p in prompts)
    assert cache.misses == 1


def garbage_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "big.wav").write_bytes(encode_wav(tone(700.0, 1.0, 8000), 8000))
    (tmp_path / "junk.wav").write_bytes(b"this is not a wav file at all, just text\n" * 4)
    (tmp_path / "empty.wav").write_bytes(encode_wav(np.zeros(0, dtype=np.int16), 8000))
    (tmp_path / "adir.wav").mkdir()
    return {
        "missing": (tmp_path / "nope.wav", "no such file"),
        "oversize": (tmp_path / "big.wav", "16044 bytes is over the 4096-byte limit"),
        "garbage": (tmp_path / "junk.wav", "not a playable WAV file: not a RIFF/WAVE file"),
        "no audio": (tmp_path / "empty.wav", "contains no audio"),
        "directory": (tmp_path / "adir.wav", "not a regular file"),
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["missing", "oversize", "garbage", "no audio", "directory"])
async def test_unplayable_files_raise_an_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path, reason = garbage_files(tmp_path)[case]
    cache = PromptCache(max_file_bytes=4096)
    with pytest.raises(PromptError) as caught:
        await cache.load(path)
    assert isinstance(caught.value, MediaEngineError)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: {reason}")
    assert len(cache) == 0
    with pytest.raises(PromptError, match=reason):
        await read_prompt(path, max_file_bytes=4096)


# --- the frame sources ------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 37, 160, 1000, 1600])
def test_looping_source_is_seamless(length: int) -> None:
    samples = ramp(length)
    source = LoopingSource(Prompt(samples))
    frames = [source.next_frame() for _ in range(40)]
    assert all(f.shape == (SAMPLES_PER_FRAME,) and not f.flags.writeable for f in frames)
    assert np.array_equal(np.concatenate(frames), np.resize(samples, 40 * SAMPLES_PER_FRAME))
    source.reset()
    assert np.array_equal(source.next_frame(), frames[0])


def test_each_loop_keeps_its_own_position_and_is_a_frame_source() -> None:
    prompt = Prompt(ramp(500))
    first, second = prompt.loop(), prompt.loop()
    first.next_frame()
    assert np.array_equal(second.next_frame(), prompt.samples[:SAMPLES_PER_FRAME])
    room_music: FrameSource = first  # what Room.music takes
    assert room_music.next_frame()[0] == prompt.samples[SAMPLES_PER_FRAME]
    assert LoopingSource(Prompt(np.zeros(0, dtype=np.int16))).next_frame() is SILENCE


@pytest.mark.parametrize("length", [1, 160, 500])
def test_prompt_source_plays_once_then_silence(length: int) -> None:
    samples = ramp(length)
    prompt = Prompt(samples)
    frames: list[Frame] = []
    calls: list[int] = []
    source = PromptSource(prompt, on_done=lambda: calls.append(len(frames)))
    for _ in range(prompt.frame_count):
        assert not source.done and not calls
        frames.append(source.next_frame())
    assert source.done and source.frames_left == 0
    assert calls == [prompt.frame_count - 1]  # from the call that handed out the last frame
    played = np.concatenate(frames)
    assert np.array_equal(played[:length], samples) and not played[length:].any()
    assert source.next_frame() is SILENCE and len(calls) == 1


def test_an_empty_prompt_is_done_on_the_first_frame() -> None:
    calls: list[None] = []
    source = PromptSource(Prompt(np.zeros(0, dtype=np.int16)), on_done=lambda: calls.append(None))
    assert not source.done
    assert source.next_frame() is SILENCE and source.done and len(calls) == 1
    assert source.next_frame() is SILENCE and len(calls) == 1


def test_prompt_player_chains_prompts_without_a_gap() -> None:
    fake, leg = fake_leg()
    first, second = Prompt(ramp(300)), Prompt(ramp(200) + 5)
    player = PromptPlayer(leg, first)
    player.source = first.once(on_done=lambda: player.play(second))
    for n in range(5):
        player.tick(n)
    sent = np.concatenate(fake.sent)
    expected = np.zeros(5 * SAMPLES_PER_FRAME, dtype=np.int16)
    expected[:300] = first.samples
    expected[320:520] = second.samples
    assert np.array_equal(sent, expected)
    assert player.done
    with pytest.raises(LegBusy):
        PromptPlayer(leg, second)
    player.detach()
    assert fake.owner is None


def test_prompt_rejects_what_is_not_mono_int16() -> None:
    with pytest.raises(PromptError):
        Prompt(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(PromptError):
        Prompt(np.zeros(10, dtype=np.float32))


# --- the built-in hold music ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_built_in_hold_music_loads_at_8k_with_a_sane_level() -> None:
    path = default_hold_music_path()
    assert path.is_file() and path.stat().st_size < 600_000
    cache = PromptCache()
    music = await load_music(cache=cache)
    assert await load_music(path, cache=cache) is music
    assert 20.0 <= music.duration <= 30.0
    wav = decode_wav(path.read_bytes())
    assert wav.channels == 1 and wav.sample_rate in (8000, 16000)
    assert len(music) == len(wav.samples) * 8000 // wav.sample_rate  # now 8 kHz
    assert len(music) % SAMPLES_PER_FRAME == 0  # whole frames: the loop is frame-aligned
    level = rms_dbfs(music.samples)
    assert -35.0 < level < -12.0
    # Never silent for long: every second carries the music.
    seconds = music.samples[: len(music) // 8000 * 8000].reshape(-1, 8000)
    assert min(rms_dbfs(s) for s in seconds) > -35.0
