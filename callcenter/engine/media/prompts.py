"""Prompts and music from WAV files: loading off the loop, a bounded cache, frame sources.

Owns reading an audio file (size bounded before a byte is read, read and decoded in a worker
thread, resampled once to 8 kHz mono by `media.wav.load_prompt`), the `PromptCache` that
keeps decoded prompts by (resolved path, mtime_ns, size) within a byte budget (least recently
used out first), the immutable `Prompt`, and the two frame sources made from one:
`PromptSource` (once, then silence) and `LoopingSource` (forever, seamlessly). Both have
`next_frame()`, so either can be a `Room.music` or feed a player (`players.PromptPlayer`,
`players.MusicPlayer`).

Must not know legs, rooms, calls or settings: callers pass paths (the built-in hold music is
`default_hold_music_path()`), and nothing here runs on the media clock except `next_frame`,
which only slices preloaded samples.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np

from ...media import PCM, SAMPLE_RATE, SAMPLES_PER_FRAME, SILENCE, Frame, MediaError, load_prompt
from ...media.assets import HOLD_MUSIC
from .errors import PromptError

MAX_PROMPT_FILE_BYTES: Final = 64 << 20
"""Largest file read: about 6 minutes of 44.1 kHz stereo 16-bit (a prompt is seconds, hold
music a few minutes); decoding it peaks at a few times this in memory."""

DEFAULT_CACHE_BYTES: Final = 64 << 20
"""Decoded audio kept by a `PromptCache`: about 70 minutes of 8 kHz mono samples."""

StrPath = str | os.PathLike[str]


def default_hold_music_path() -> Path:
    """The built-in hold music shipped with the package (8 kHz mono WAV, 24 s, loops)."""
    return HOLD_MUSIC


class Prompt:
    """Audio ready to play: 8 kHz mono int16, read-only, shared by every player and room
    that plays it (each keeps its own position in a `PromptSource` or `LoopingSource`).

    The samples sit in one buffer followed by the first 160 samples again, so a looping frame
    that crosses the end is still one slice; the zero-padded last frame of a one-shot play
    is kept apart. Neither is built per tick.
    """

    __slots__ = ("_looped", "_tail", "name", "samples")

    def __init__(self, samples: PCM, name: str = "<samples>") -> None:
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise PromptError(name, f"samples must be 1-D int16, not {samples.dtype}")
        n = len(samples)
        looped = np.zeros(n + SAMPLES_PER_FRAME, dtype=np.int16)
        looped[:n] = samples
        if n:
            looped[n:] = np.resize(samples, SAMPLES_PER_FRAME)  # repeats a prompt under 20 ms
        looped.flags.writeable = False
        self._looped = looped
        self.samples: PCM = looped[:n]
        self.name = name
        partial_len = n % SAMPLES_PER_FRAME
        tail: Frame | None = None
        if partial_len:
            tail = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
            tail[:partial_len] = samples[n - partial_len :]
            tail.flags.writeable = False
        self._tail = tail

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def frame_count(self) -> int:
        """Frames a one-shot play takes (the last one padded with silence)."""
        return -(-len(self.samples) // SAMPLES_PER_FRAME)

    @property
    def nbytes(self) -> int:
        """Memory held, what a `PromptCache` counts against its budget."""
        return self._looped.nbytes + (0 if self._tail is None else self._tail.nbytes)

    def once(self, on_done: Callable[[], None] | None = None) -> PromptSource:
        return PromptSource(self, on_done=on_done)

    def loop(self) -> LoopingSource:
        return LoopingSource(self)

    def __repr__(self) -> str:
        return f"<Prompt {self.name} {self.duration:.2f} s>"


class PromptSource:
    """The prompt once, frame by frame, then silence.

    `on_done` is called (once, synchronously) from the `next_frame` that hands out the last
    frame, or the first one for an empty prompt; `done` is true from then on. The callback
    may start the next prompt (`PromptPlayer.play`) or move the leg elsewhere.
    Frames are read-only views of the prompt: nothing is allocated per frame but the view.
    """

    __slots__ = ("_full_end", "_on_done", "_pos", "done", "prompt")

    def __init__(self, prompt: Prompt, *, on_done: Callable[[], None] | None = None) -> None:
        self.prompt = prompt
        self._on_done = on_done
        self._pos = 0
        n = len(prompt.samples)
        self._full_end = n - n % SAMPLES_PER_FRAME
        self.done = False

    @property
    def frames_left(self) -> int:
        if self.done:
            return 0
        return -(-(len(self.prompt.samples) - self._pos) // SAMPLES_PER_FRAME)

    def next_frame(self) -> Frame:
        pos = self._pos
        if pos < self._full_end:
            end = pos + SAMPLES_PER_FRAME
            self._pos = end
            frame: Frame = self.prompt.samples[pos:end]
            if end == len(self.prompt.samples):
                self._finish()
            return frame
        if self.done:
            return SILENCE
        tail = self.prompt._tail
        self._pos = len(self.prompt.samples)
        self._finish()
        return SILENCE if tail is None else tail

    def _finish(self) -> None:
        self.done = True
        callback, self._on_done = self._on_done, None
        if callback is not None:
            callback()

    def __repr__(self) -> str:
        return f"<PromptSource {self.prompt.name} {self.frames_left} frames left>"


class LoopingSource:
    """The prompt over and over with no gap or click at the loop point: the frames joined
    are the samples repeated. Give each player or room its own (`prompt.loop()`): a source
    shared by two would advance twice a tick. An empty prompt loops as silence."""

    __slots__ = ("_buffer", "_length", "_pos", "prompt")

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        self._buffer = prompt._looped
        self._length = len(prompt.samples)
        self._pos = 0

    def next_frame(self) -> Frame:
        length = self._length
        if not length:
            return SILENCE
        pos = self._pos
        frame: Frame = self._buffer[pos : pos + SAMPLES_PER_FRAME]
        pos += SAMPLES_PER_FRAME
        # The slice past the end read the start again (the buffer repeats it), so the next
        # frame picks up just after it.
        self._pos = pos % length if pos >= length else pos
        return frame

    def reset(self) -> None:
        self._pos = 0

    def __repr__(self) -> str:
        return f"<LoopingSource {self.prompt.name}>"


# --- files ----------------------------------------------------------------------------------


class _Stamp(NamedTuple):
    """What identifies one version of a file: it changed if any of this did."""

    path: str  # resolved
    mtime_ns: int
    size: int


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _stat(path: str, max_bytes: int) -> _Stamp:
    """Resolve and stat `path` (in a worker thread); refuse what cannot be a prompt."""
    try:
        resolved = Path(path).resolve(strict=True)
        st = resolved.stat()
    except FileNotFoundError:
        raise PromptError(path, "no such file") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop before 3.13
        reason = _os_reason(exc) if isinstance(exc, OSError) else str(exc)
        raise PromptError(path, f"cannot read: {reason}") from None
    _check_stat(path, st, max_bytes)
    return _Stamp(str(resolved), st.st_mtime_ns, st.st_size)


def _check_stat(path: str, st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise PromptError(path, "not a regular file")
    if st.st_size > max_bytes:
        raise PromptError(path, f"{st.st_size} bytes is over the {max_bytes}-byte limit")


def _read(path: str, resolved: str, max_bytes: int) -> tuple[Prompt, _Stamp]:
    """Read, decode and resample one file (in a worker thread), with the stamp of what was
    read: taken from the open file, so a file replaced meanwhile is not cached as the old."""
    try:
        # O_NONBLOCK: a FIFO swapped in since the stat must fail the check, not hang the
        # thread in open(). It changes nothing for regular files.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            st = os.fstat(file.fileno())
            _check_stat(path, st, max_bytes)
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise PromptError(path, "no such file") from None
    except OSError as exc:
        raise PromptError(path, f"cannot read: {_os_reason(exc)}") from None
    if len(data) > max_bytes:
        raise PromptError(path, f"grew past the {max_bytes}-byte limit while being read")
    try:
        samples = load_prompt(data, max_bytes=max_bytes)
    except MediaError as exc:
        raise PromptError(path, f"not a playable WAV file: {exc}") from None
    if not len(samples):
        raise PromptError(path, "contains no audio")
    return Prompt(samples, name=path), _Stamp(resolved, st.st_mtime_ns, st.st_size)


def _read_uncached(path: str, max_bytes: int) -> Prompt:
    stamp = _stat(path, max_bytes)
    return _read(path, stamp.path, max_bytes)[0]


async def read_prompt(path: StrPath, *, max_file_bytes: int = MAX_PROMPT_FILE_BYTES) -> Prompt:
    """Load one WAV file (any rate and channel count) as a `Prompt`, in a worker thread,
    without caching. Raises `PromptError` naming the file."""
    return await asyncio.to_thread(_read_uncached, os.fspath(path), max_file_bytes)


async def load_music(
    path: StrPath | None = None,
    *,
    cache: PromptCache | None = None,
    max_file_bytes: int = MAX_PROMPT_FILE_BYTES,
) -> Prompt:
    """The music on hold: the file at `path`, or the built-in music when `path` is None
    (what an unset `CALLCENTER_HOLD_MUSIC` means). Through `cache` if given. Load it once
    at start and give each player its own loop (`MusicPlayer(leg, prompt)`,
    `room.music = prompt.loop()`)."""
    target = default_hold_music_path() if path is None else path
    if cache is not None:
        return await cache.load(target)
    return await read_prompt(target, max_file_bytes=max_file_bytes)


class PromptCache:
    """Decoded prompts by file, within `max_bytes` of samples, least recently used out first.

    `load(path)` looks at the file (a stat in a worker thread) and returns the cached
    `Prompt` (the same object) while its resolved path, mtime and size are unchanged;
    otherwise it reads and decodes the file in a worker thread, once however many callers
    ask at the same time. A prompt larger than the whole budget is returned but not kept.
    Players keep the `Prompt` they were given, so evicting or reloading never cuts a play.
    """

    __slots__ = ("_entries", "_loading", "hits", "max_bytes", "max_file_bytes", "misses", "nbytes")

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        max_file_bytes: int = MAX_PROMPT_FILE_BYTES,
    ) -> None:
        if max_bytes < 0 or max_file_bytes <= 0:
            raise ValueError("cache sizes must be positive")
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes
        self._entries: OrderedDict[str, tuple[_Stamp, Prompt]] = OrderedDict()
        self._loading: dict[_Stamp, asyncio.Future[tuple[Prompt, _Stamp]]] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self, path: StrPath) -> Prompt:
        name = os.fspath(path)
        stamp = await asyncio.to_thread(_stat, name, self.max_file_bytes)
        entry = self._entries.get(stamp.path)
        if entry is not None and entry[0] == stamp:
            self._entries.move_to_end(stamp.path)
            self.hits += 1
            return entry[1]
        future = self._loading.get(stamp)
        if future is None:
            self.misses += 1
            # What asyncio.to_thread does, kept as a future rather than a coroutine so that
            # concurrent callers share it and a cancelled caller does not cancel the others.
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                None, partial(_read, name, stamp.path, self.max_file_bytes)
            )
            self._loading[stamp] = future
            future.add_done_callback(partial(self._loaded, stamp))
        prompt, _ = await asyncio.shield(future)
        return prompt

    def _loaded(self, stamp: _Stamp, future: asyncio.Future[tuple[Prompt, _Stamp]]) -> None:
        self._loading.pop(stamp, None)
        if future.cancelled() or future.exception() is not None:
            return  # the callers get the error; retrieving it here keeps asyncio quiet
        prompt, read_stamp = future.result()
        self._store(read_stamp, prompt)

    def _store(self, stamp: _Stamp, prompt: Prompt) -> None:
        old = self._entries.pop(stamp.path, None)
        if old is not None:
            self.nbytes -= old[1].nbytes
        if prompt.nbytes > self.max_bytes:
            return
        self._entries[stamp.path] = (stamp, prompt)
        self.nbytes += prompt.nbytes
        while self.nbytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0

    def __repr__(self) -> str:
        return f"<PromptCache {len(self._entries)} prompts, {self.nbytes} bytes>"
