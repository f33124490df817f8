"""What a queued caller hears: music, interrupted now and then by an announcement.

Owns the caller's leg while the call waits (it claims it like any player) and the order of
what is played: an announcement stops the music, plays once, and the music resumes where it
left off. Must not know queues, positions or agents: the ACD decides what to say and when.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from callcenter.engine.media import LoopingSource, Prompt, RtpLeg
from callcenter.engine.media.players import claim, release
from callcenter.engine.media.prompts import PromptSource


class HoldMedia:
    """A `Tickable` for a waiting call: music on loop, announcements in between."""

    __slots__ = ("_after", "_announcement", "_queue", "leg", "music")

    def __init__(self, leg: RtpLeg, music: Prompt) -> None:
        claim(leg, self)
        self.leg = leg
        self.music = LoopingSource(music)
        self._announcement: PromptSource | None = None
        self._queue: list[Prompt] = []
        self._after: Callable[[], None] | None = None

    @property
    def announcing(self) -> bool:
        return self._announcement is not None

    def announce(
        self, prompts: Sequence[Prompt], *, on_done: Callable[[], None] | None = None
    ) -> None:
        """Play `prompts` in turn instead of the music, then go back to it (and `on_done`).
        A new announcement replaces one still playing."""
        self._queue = list(prompts)
        self._after = on_done
        self._announcement = None
        self._next()

    def _next(self) -> None:
        if self._queue:
            self._announcement = PromptSource(self._queue.pop(0), on_done=self._next)
            return
        self._announcement = None
        after, self._after = self._after, None
        if after is not None:
            after()

    def tick(self, n: int) -> None:
        leg = self.leg
        leg.read_frame()  # keeps the jitter buffer draining (digits still reach on_digit)
        source = self._announcement
        leg.write_frame(source.next_frame() if source is not None else self.music.next_frame())

    def detach(self) -> None:
        self._queue = []
        self._after = None
        self._announcement = None
        release(self.leg, self)

    def __repr__(self) -> str:
        state = "announcing" if self._announcement is not None else "music"
        return f"<HoldMedia {state} {self.leg!r}>"
