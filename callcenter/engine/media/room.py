"""A room: the mix-minus bridge of several legs, one tick at a time, on the media clock.

A leg is anything that satisfies `legs.Leg`: an `RtpLeg`, a `BrowserLeg` (an agent page),
in any mixture.

Owns the membership (which legs, each one's mode and caller flag, whisper targets), reading
one frame from every leg per tick, handing them to `media.RoomMixer` and writing each leg
its mix. The mixer is rebuilt only when membership or a mode changes. Must not know calls,
agents, queues or recording storage: the recorder is a callback given the stereo frame.

Hold: a leg in `Mode.HOLD` hears `music` (a ToneGenerator or any object with
`next_frame()`), or silence when the room has none.

Forwarding: a room of exactly two `RtpLeg`s, both `Mode.FULL`, without `on_recording`, whose
legs negotiated the same codec, does not mix: the legs forward each other's packets as they
arrive (`leg.forward_pair`: renumbered with the sending leg's SSRC, sequence numbers and
timestamps, no jitter buffer, no decoding), and the tick only renews that link. Any change
(a third leg, a mode, recording, a re-negotiation to another codec, digits sent on a leg)
goes back to mixing at once, and a later tick goes back to forwarding when it may, the
receivers seeing one continuous stream throughout. `Room(forward=False)` always mixes, and
so does a room with any other kind of leg (a browser leg has no packets to forward).
"""

from __future__ import annotations

from typing import Protocol

from ...media import SILENCE, Frame, Mode, Participant, RoomMixer
from .leg import RtpLeg, forward_pair, unlink_pair
from .legs import Leg, RecordingSink
from .players import claim, release


class FrameSource(Protocol):
    def next_frame(self) -> Frame: ...


class Room:
    """Legs that hear each other (mix-minus), each with a mode (full, listen, whisper,
    muted, hold). Put the room on the media clock; an empty room costs nothing."""

    __slots__ = (
        "_forward",
        "_inputs",
        "_legs",
        "_mixer",
        "_on_recording",
        "_pair",
        "_participants",
        "music",
    )

    def __init__(self, *, forward: bool = True) -> None:
        self._participants: dict[Leg, Participant[Leg]] = {}
        self._legs: tuple[Leg, ...] = ()
        self._mixer: RoomMixer[Leg] | None = None
        self._inputs: dict[Leg, Frame | None] = {}
        self.music: FrameSource | None = None
        self._on_recording: RecordingSink | None = None
        self._forward = forward
        self._pair: tuple[RtpLeg, RtpLeg] | None = None
        """The two legs when the membership allows forwarding: both RTP (the codecs are
        checked by `forward_pair` on every tick)."""

    @property
    def on_recording(self) -> RecordingSink | None:
        """Called every tick with the (160, 2) stereo frame (caller left) and the slot."""
        return self._on_recording

    @on_recording.setter
    def on_recording(self, sink: RecordingSink | None) -> None:
        self._on_recording = sink
        self._rebuild()

    def add(
        self,
        leg: Leg,
        *,
        mode: Mode = Mode.FULL,
        is_caller: bool = False,
        whisper_to: Leg | None = None,
    ) -> None:
        """Add a leg, or change the mode of one already in the room."""
        participant = Participant(leg, mode=mode, is_caller=is_caller, whisper_to=whisper_to)
        if self._participants.get(leg) == participant:
            return  # nothing changes: no rebuild (a conference re-applies every mode at once)
        claim(leg, self)
        self._participants[leg] = participant
        self._rebuild()

    def set_mode(self, leg: Leg, mode: Mode, *, whisper_to: Leg | None = None) -> None:
        old = self._participants[leg]
        self.add(leg, mode=mode, is_caller=old.is_caller, whisper_to=whisper_to)

    def remove(self, leg: Leg) -> None:
        """Take a leg out (no error if it is not in the room); it is free for another owner."""
        if self._participants.pop(leg, None) is not None:
            release(leg, self)
            self._rebuild()

    @property
    def legs(self) -> tuple[Leg, ...]:
        return self._legs

    def participant(self, leg: Leg) -> Participant[Leg]:
        """The leg's mode, caller flag and whisper target (KeyError: not in the room)."""
        return self._participants[leg]

    def __len__(self) -> int:
        return len(self._legs)

    @property
    def forwarding(self) -> bool:
        """True while the two legs forward each other's packets instead of being mixed."""
        pair = self._pair
        return pair is not None and pair[0].forwarding_to is pair[1]

    def _rebuild(self) -> None:
        self._legs = tuple(self._participants)
        self._inputs = dict.fromkeys(self._legs)
        self._mixer = (
            RoomMixer(list(self._participants.values()), record=self._on_recording is not None)
            if self._legs
            else None
        )
        pair: tuple[RtpLeg, RtpLeg] | None = None
        if (
            self._forward
            and len(self._legs) == 2
            and self._on_recording is None
            and all(p.mode is Mode.FULL for p in self._participants.values())
        ):
            a, b = self._legs
            if isinstance(a, RtpLeg) and isinstance(b, RtpLeg):
                pair = (a, b)
        old = self._pair
        self._pair = pair
        if old is not None and old != pair:
            # Back to mixing at once: from this moment the legs buffer what they receive.
            unlink_pair(*old)

    def tick(self, n: int) -> None:
        pair = self._pair
        if pair is not None and forward_pair(*pair):
            return  # the legs forward in their datagram callbacks
        mixer = self._mixer
        if mixer is None:
            return
        inputs = self._inputs
        for leg in self._legs:
            frame = leg.read_frame()
            # read_frame reuses the leg's buffer, but the mixer copies its inputs at once.
            inputs[leg] = frame
        music = self.music.next_frame() if self.music is not None else None
        result = mixer.mix(inputs, music)
        outputs = result.outputs
        for leg in self._legs:
            out = outputs.get(leg)
            leg.write_frame(SILENCE if out is None else out)
        sink = self._on_recording
        if result.recording is not None and sink is not None:
            sink(result.recording, n)

    def __repr__(self) -> str:
        return f"<Room of {len(self._legs)}>"
