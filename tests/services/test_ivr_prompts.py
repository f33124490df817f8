"""IVR prompt audio: `text:` rendered by the real espeak-ng once per text, WAV files read."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from callcenter.engine.media import PromptError
from callcenter.media import SAMPLE_RATE, decode_wav, encode_wav, rms_dbfs
from callcenter.services.ivr import load_flow
from callcenter.services.ivr.prompts import (
    PromptLibrary,
    TtsUnavailable,
    flow_prompts,
    text_digest,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@needs_espeak
@pytest.mark.asyncio
async def test_text_is_rendered_once_to_an_8khz_wav(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path / "prompts", tmp_path / "cache")
    # Concurrent asks for one text share one espeak-ng run.
    first, again = await asyncio.gather(
        library.load("text:Hello, caller."), library.load("text:Hello, caller.")
    )
    assert library.renders == 1
    assert first is again
    assert 0.3 < first.duration < 5
    assert rms_dbfs(first.samples) > -40
    cached = tmp_path / "cache" / f"{text_digest('en', 'Hello, caller.')}.wav"
    wav = decode_wav(cached.read_bytes())
    assert (wav.sample_rate, wav.channels) == (SAMPLE_RATE, 1)
    # A new process (a new library) finds the rendering on disk.
    fresh = PromptLibrary(tmp_path / "prompts", tmp_path / "cache")
    assert len(await fresh.load("text:Hello, caller.")) == len(first)
    assert fresh.renders == 0
    await library.load("text:Something else.")
    assert library.renders == 2


@pytest.mark.asyncio
async def test_missing_espeak_is_a_clear_error(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, tmp_path / "cache", espeak="no-such-espeak-ng")
    with pytest.raises(TtsUnavailable, match="not installed"):
        await library.load("text:Hello")


@pytest.mark.asyncio
async def test_text_length_is_bounded(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, tmp_path / "cache")
    with pytest.raises(PromptError, match="characters"):
        await library.load("text:" + "a" * 1001)
    with pytest.raises(PromptError, match="characters"):
        await library.load("text:   ")
    assert library.renders == 0


@pytest.mark.asyncio
async def test_wav_prompts_come_from_the_prompts_folder(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    tone = (np.sin(np.arange(8000) * 0.3) * 8000).astype(np.int16)
    (prompts / "welcome.wav").write_bytes(encode_wav(tone, SAMPLE_RATE))
    (tmp_path / "secret.wav").write_bytes(encode_wav(tone, SAMPLE_RATE))
    (prompts / "escape.wav").symlink_to(tmp_path / "secret.wav")
    library = PromptLibrary(prompts, tmp_path / "cache")
    prompt = await library.load("welcome.wav")
    assert len(prompt) == 8000
    assert await library.load("welcome.wav") is prompt  # the PromptCache's copy
    with pytest.raises(PromptError, match="not under"):
        await library.load("escape.wav")
    with pytest.raises(PromptError, match="no such file"):
        await library.load("missing.wav")


def test_flow_prompts_lists_each_prompt_once() -> None:
    flow, _ = load_flow(Path("ivr/flows/default.yaml"))
    prompts = flow_prompts(flow)
    assert prompts[0].startswith("text:Thank you for calling")
    assert len(prompts) == len(set(prompts)) == 6
    assert "text:Sorry, I did not hear your choice." in prompts
