"""The audio of IVR prompts: `text:...` rendered with espeak-ng, files from `ivr/prompts/`.

Owns turning a flow's prompt string into a playable engine `Prompt`. Text is rendered by the
espeak-ng program (a subprocess, off the event loop) to an 8 kHz mono WAV in a cache directory,
named by the sha256 of voice and text, so a text is rendered once per machine, ever; the WAV
files, rendered or administrator's, are then read through the engine's `PromptCache` (decoded
once, kept in memory). Must not know calls, legs or flows' semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Final

from callcenter.engine.media import Prompt, PromptCache, PromptError
from callcenter.media import SAMPLE_RATE, MediaError, encode_wav, load_prompt
from callcenter.services.ivr.flow import TEXT_PREFIX, Flow, Gather, Menu, Play
from callcenter.services.ivr.loader import MAX_TEXT

log = logging.getLogger(__name__)

ESPEAK: Final = "espeak-ng"
DEFAULT_VOICE: Final = "en"
RENDER_TIMEOUT: Final = 30.0
# espeak-ng writes 22.05 kHz 16-bit mono: 1000 characters are well under a minute of it.
MAX_RENDERED_BYTES: Final = 16 << 20
_VOICE = re.compile(r"[A-Za-z0-9_+-]{1,40}")


class TtsUnavailable(PromptError):
    """espeak-ng is not installed (or not on PATH): text prompts cannot be rendered."""


def text_digest(voice: str, text: str) -> str:
    """The cache key of one rendering: sha256 over the voice and the text."""
    return hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()


def flow_prompts(flow: Flow) -> tuple[str, ...]:
    """Every prompt a flow may play, each once, in node order."""
    seen: dict[str, None] = {}
    for node in flow.nodes.values():
        if isinstance(node, Play):
            seen[node.prompt] = None
        elif isinstance(node, Menu | Gather):
            for prompt in (node.prompt, node.invalid_prompt, node.no_input_prompt):
                if prompt is not None:
                    seen[prompt] = None
    return tuple(seen)


class PromptLibrary:
    """Prompts by their flow spelling: `text:Hello` or `welcome.wav` (under `prompts_dir`).

    `renders` counts espeak-ng runs (a cache hit on disk or in flight adds nothing).
    """

    def __init__(
        self,
        prompts_dir: Path,
        cache_dir: Path,
        *,
        cache: PromptCache | None = None,
        voice: str = DEFAULT_VOICE,
        espeak: str = ESPEAK,
    ) -> None:
        if not _VOICE.fullmatch(voice):
            raise ValueError(f"bad espeak-ng voice name {voice!r}")
        self.prompts_dir = prompts_dir
        self.cache_dir = cache_dir
        self.cache = cache if cache is not None else PromptCache()
        self.voice = voice
        self.espeak = espeak
        self.renders = 0
        self._rendering: dict[str, asyncio.Future[Path]] = {}

    async def load(self, prompt: str) -> Prompt:
        """The audio of one prompt; `PromptError` (naming it) when it cannot be had."""
        if prompt.startswith(TEXT_PREFIX):
            path = await self.render(prompt[len(TEXT_PREFIX) :])
        else:
            path = self._file(prompt)
        return await self.cache.load(path)

    async def load_flow(self, flow: Flow) -> dict[str, Prompt]:
        """Every prompt of `flow`, loaded (rendered if need be) concurrently."""
        names = flow_prompts(flow)
        prompts = await asyncio.gather(*(self.load(name) for name in names))
        return dict(zip(names, prompts, strict=True))

    def _file(self, name: str) -> Path:
        base = self.prompts_dir.resolve()
        path = (base / name).resolve()
        # The loader refuses `..`; a symlink out of the folder is refused here.
        if not path.is_relative_to(base):
            raise PromptError(name, f"not under {self.prompts_dir}")
        return path

    async def render(self, text: str) -> Path:
        """The cached WAV of `text` spoken, rendered now if it is not there yet."""
        if not text.strip() or len(text) > MAX_TEXT:
            raise PromptError(f"text:{text[:40]}", f"text must have 1 to {MAX_TEXT} characters")
        digest = text_digest(self.voice, text)
        path = self.cache_dir / f"{digest}.wav"
        if await asyncio.to_thread(path.is_file):
            return path
        future = self._rendering.get(digest)
        if future is None:
            future = asyncio.ensure_future(self._render(text, path))
            self._rendering[digest] = future
            future.add_done_callback(lambda _: self._rendering.pop(digest, None))
        return await asyncio.shield(future)

    async def _render(self, text: str, path: Path) -> Path:
        name = f"text:{text[:40]}"
        program = shutil.which(self.espeak)
        if program is None:
            raise TtsUnavailable(name, f"{self.espeak} is not installed: apt-get install espeak-ng")
        self.renders += 1
        process = await asyncio.create_subprocess_exec(
            program,
            "-v",
            self.voice,
            "--stdin",  # the text never becomes an argument (a leading '-' is no option)
            "--stdout",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(text.encode()), timeout=RENDER_TIMEOUT
            )
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0 or not out:
            reason = err.decode(errors="replace").strip()[:200] or f"exit {process.returncode}"
            raise PromptError(name, f"espeak-ng failed: {reason}")
        if len(out) > MAX_RENDERED_BYTES:
            raise PromptError(name, "espeak-ng output is too large")
        await asyncio.to_thread(_store, out, path, name)
        log.info("rendered %s to %s", name, path.name)
        return path


def _store(wav: bytes, path: Path, name: str) -> None:
    """Resample espeak-ng's WAV to 8 kHz mono and write it atomically (in a worker thread)."""
    try:
        samples = load_prompt(wav, max_bytes=MAX_RENDERED_BYTES)
    except MediaError as exc:
        raise PromptError(name, f"espeak-ng wrote no usable WAV: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(encode_wav(samples, SAMPLE_RATE))
    partial.replace(path)
