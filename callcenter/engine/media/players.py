"""Generated media for one leg, on the media clock: echo, tone, prompt and music players.

Owns what a single leg hears when it is not in a room. Each player is a `Tickable`: on a
tick it reads one frame from its leg and writes one frame to it. Must not know calls,
sockets or codecs (the leg decodes and encodes), nor the clock's schedule.

A leg belongs to at most one player or room: a player claims it on creation (`LegBusy`
otherwise) and gives it back with `detach()`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...media import SILENCE, ToneGenerator
from .errors import LegBusy
from .legs import Leg, RecordingSink
from .prompts import LoopingSource, Prompt, PromptSource


def claim(leg: Leg, owner: object) -> None:
    """Make `owner` the leg's only player or room."""
    if leg.owner is not None and leg.owner is not owner:
        raise LegBusy(f"{leg!r} already belongs to {leg.owner!r}")
    leg.owner = owner


def release(leg: Leg, owner: object) -> None:
    if leg.owner is owner:
        leg.owner = None


class Echo:
    """The leg hears itself: each tick's received frame is sent straight back, so the echo
    lags by the jitter buffer's delay (1-2 ticks) plus the network's round trip."""

    __slots__ = ("leg",)

    def __init__(self, leg: Leg) -> None:
        claim(leg, self)
        self.leg = leg

    def tick(self, n: int) -> None:
        leg = self.leg
        frame = leg.read_frame()
        leg.write_frame(SILENCE if frame is None else frame)

    def detach(self) -> None:
        release(self.leg, self)

    def __repr__(self) -> str:
        return f"<Echo {self.leg!r}>"


class TonePlayer:
    """Plays a continuous tone into the leg and discards what the leg sends."""

    __slots__ = ("generator", "leg")

    def __init__(
        self,
        leg: Leg,
        frequencies: tuple[float, ...] = (1000.0,),
        level_dbfs: float = -10.0,
    ) -> None:
        claim(leg, self)
        self.leg = leg
        self.generator = ToneGenerator(frequencies, level_dbfs)

    def tick(self, n: int) -> None:
        self.leg.read_frame()  # keeps the jitter buffer draining
        self.leg.write_frame(self.generator.next_frame())

    def detach(self) -> None:
        release(self.leg, self)

    def __repr__(self) -> str:
        return f"<TonePlayer {self.leg!r}>"


class PromptPlayer:
    """Plays a prompt once into the leg, then silence until it is given another or detached;
    discards what the leg sends (DTMF still reaches `leg.on_digit`).

    `done` turns true, and `on_done` is called, on the tick that sends the last frame. To
    chain prompts keep the player and call `play(next_prompt)`, from `on_done` or later:
    the next prompt starts on the following tick with no gap.

    With `on_recording` set it is fed like a room's sink: what the caller sends on the left,
    the prompt on the right (an IVR recorded from the answer, not only from the agent).
    """

    __slots__ = ("_stereo", "leg", "on_recording", "source")

    def __init__(
        self, leg: Leg, prompt: Prompt, *, on_done: Callable[[], None] | None = None
    ) -> None:
        claim(leg, self)
        self.leg = leg
        self.source = PromptSource(prompt, on_done=on_done)
        self.on_recording: RecordingSink | None = None
        self._stereo = np.zeros((len(SILENCE), 2), dtype=np.int16)

    @property
    def done(self) -> bool:
        return self.source.done

    def play(self, prompt: Prompt, *, on_done: Callable[[], None] | None = None) -> None:
        """Stop what is playing and start `prompt` from its beginning."""
        self.source = PromptSource(prompt, on_done=on_done)

    def tick(self, n: int) -> None:
        heard = self.leg.read_frame()  # also keeps the jitter buffer draining
        played = self.source.next_frame()
        self.leg.write_frame(played)
        sink = self.on_recording
        if sink is not None:
            stereo = self._stereo
            stereo[:, 0] = SILENCE if heard is None else heard
            stereo[:, 1] = played
            sink(stereo, n)

    def detach(self) -> None:
        release(self.leg, self)

    def __repr__(self) -> str:
        return f"<PromptPlayer {self.source.prompt.name} {self.leg!r}>"


class MusicPlayer:
    """Loops music into the leg (the `music` extension, or hold without a room); discards
    what the leg sends. Given a `Prompt` it keeps its own position in it, so any number of
    players share one loaded file."""

    __slots__ = ("leg", "source")

    def __init__(self, leg: Leg, music: Prompt | LoopingSource) -> None:
        claim(leg, self)
        self.leg = leg
        self.source = music.loop() if isinstance(music, Prompt) else music

    def tick(self, n: int) -> None:
        self.leg.read_frame()
        self.leg.write_frame(self.source.next_frame())

    def detach(self) -> None:
        release(self.leg, self)

    def __repr__(self) -> str:
        return f"<MusicPlayer {self.source.prompt.name} {self.leg!r}>"


def music_extension(music: Prompt) -> Callable[[Leg], MusicPlayer]:
    """The `music` extension for `calls.EXTENSIONS`: each call gets a `MusicPlayer` with its
    own loop over `music` (load it first: `await prompts.load_music(path)`)."""

    def make(leg: Leg) -> MusicPlayer:
        return MusicPlayer(leg, music)

    return make
