"""Mix-minus for one room: who hears whom, one 20 ms tick at a time.

Owns: the hearing rules of the participant modes, the sum-once-subtract-own mixing, the
saturation to int16, and the recorder's stereo pair (left: the caller; right: everyone else
audible in the room, whispers included).

Must not know: legs, codecs, packets, the media clock, or who is an agent or a supervisor
beyond `is_caller`. The engine's room owns the membership and calls `RoomMixer.mix` once per
tick with the frames that arrived (decoded, 8 kHz int16); it rebuilds the `RoomMixer` only
when membership or a mode changes. A room of two full participants with the same codec and no
recording need not call the mixer at all: the engine forwards packets (each one's mix-minus
is simply the other's input).

Hearing rules (speaker -> listener):

- `full`: heard by everyone except itself and participants on hold; hears everyone audible.
- `listen`: heard by no one; hears everyone audible.
- `whisper`: heard only by its `whisper_to` target; hears everyone audible. Without a target,
  heard by every non-caller `full` participant (the agents on the call: "whisper to the
  agents"). A target that is not in the room hears nothing, so a stale target mutes the
  whisper instead of spreading it. A caller never hears a whisper, even when named as the
  target, and a caller cannot whisper (rejected when the `Participant` is made).
- `muted`: heard by no one; hears everyone audible (and whispers aimed at it).
- `hold`: hears the music frame only (silence without one); heard by no one.

Recording: left = the full callers' voices; right = every other full participant plus every
whisper (so QA hears what the supervisor said, and no whisper ever reaches the left channel).
Muted, listen and hold participants contribute nothing; music on hold is not recorded.
Per-participant stems, if wanted, are the inputs themselves and need no mixing.

Cost: sum once, subtract each participant's own contribution (O(N) frame operations, not
O(N^2)). Whispers add one frame operation each; untargeted whispers are summed once and added
to each agent's output. A room of exactly two full participants (the recorded caller-agent
call, the common case) skips the arithmetic: each hears a copy of the other's frame.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .frame import SAMPLES_PER_FRAME, SILENCE, Frame, MediaError

K = TypeVar("K", bound=Hashable)


class MixerError(MediaError, ValueError):
    """A membership the mixer cannot honour (duplicate ids, an impossible whisper)."""


class Mode(enum.Enum):
    FULL = "full"
    LISTEN = "listen"
    WHISPER = "whisper"
    MUTED = "muted"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Participant(Generic[K]):
    """One member of a room as the mixer sees it. `id` is the key of its input and output."""

    id: K
    mode: Mode = Mode.FULL
    is_caller: bool = False
    whisper_to: K | None = None

    def __post_init__(self) -> None:
        if self.whisper_to is not None and self.mode is not Mode.WHISPER:
            raise MixerError(f"{self.id!r}: whisper_to is only meaningful in whisper mode")
        if self.whisper_to == self.id:
            raise MixerError(f"{self.id!r}: cannot whisper to itself")
        if self.is_caller and self.mode is Mode.WHISPER:
            raise MixerError(f"{self.id!r}: the caller cannot whisper")


@dataclass(frozen=True, slots=True)
class MixResult(Generic[K]):
    """Per-participant frames to play, and the recorder's pair when recording.

    Frames of mixed participants are fresh rows of one array; hold participants get the music
    frame itself (or a shared read-only silence): treat every output as read-only.
    `recording` is a C-contiguous int16 array of shape (160, 2), column 0 the left (caller)
    channel, so `recording.tobytes()` is interleaved stereo PCM as a WAV file stores it."""

    outputs: dict[K, Frame]
    recording: NDArray[np.int16] | None


class RoomMixer(Generic[K]):
    """A room's membership compiled into index arrays, so each tick is a few numpy calls."""

    __slots__ = (
        "_default_rows",
        "_default_whisperers",
        "_full_ids",
        "_hearing_ids",
        "_hold_ids",
        "_left_rows",
        "_n_full",
        "_pair",
        "_record",
        "_speaker_ids",
        "_staging",
        "_targeted",
        "_whisper_ids",
        "participants",
    )

    def __init__(self, participants: Sequence[Participant[K]], *, record: bool = True) -> None:
        ids = [p.id for p in participants]
        if len(set(ids)) != len(ids):
            raise MixerError("participant ids must be unique")
        self.participants = tuple(participants)
        self._record = record
        full = [p for p in participants if p.mode is Mode.FULL]
        others = [p for p in participants if p.mode in (Mode.LISTEN, Mode.MUTED, Mode.WHISPER)]
        whisperers = [p for p in participants if p.mode is Mode.WHISPER]
        # Output rows: full participants first (they get sum minus own), then the others
        # that hear the room (they get the sum). Inputs are staged in the same order for the
        # full rows, followed by the whisperers.
        hearing = full + others
        row_of = {p.id: i for i, p in enumerate(hearing)}
        self._full_ids = [p.id for p in full]
        self._whisper_ids = [p.id for p in whisperers]
        self._speaker_ids = self._full_ids + self._whisper_ids
        self._hearing_ids = [p.id for p in hearing]
        self._hold_ids = [p.id for p in participants if p.mode is Mode.HOLD]
        self._n_full = len(full)
        self._left_rows = np.array([i for i, p in enumerate(full) if p.is_caller], dtype=np.intp)
        # Untargeted whispers reach the agents: non-caller full participants.
        self._default_rows = np.array(
            [i for i, p in enumerate(full) if not p.is_caller], dtype=np.intp
        )
        self._default_whisperers = np.array(
            [len(full) + j for j, w in enumerate(whisperers) if w.whisper_to is None],
            dtype=np.intp,
        )
        # (staging row of the whisperer, output row of its target) for targeted whispers
        # whose target can hear one: present, not the caller, not on hold.
        callers = {p.id for p in participants if p.is_caller}
        self._targeted = [
            (len(full) + j, row_of[w.whisper_to])
            for j, w in enumerate(whisperers)
            if w.whisper_to is not None and w.whisper_to in row_of and w.whisper_to not in callers
        ]
        # The most common room by far: two full parties (a recorded call, or one whose
        # codecs differ). Ordered caller first, the recorder's left channel.
        self._pair: tuple[K, K] | None = None
        one_caller = len(full) == 2 and full[0].is_caller != full[1].is_caller
        if len(participants) == 2 and len(full) == 2 and (one_caller or not record):
            first, second = sorted(full, key=lambda p: not p.is_caller)
            self._pair = (first.id, second.id)
        # Reused every tick; int32 so that sums of many int16 voices cannot wrap.
        self._staging = np.zeros((len(full) + len(whisperers), SAMPLES_PER_FRAME), dtype=np.int32)

    def mix(self, inputs: Mapping[K, Frame | None], music: Frame | None = None) -> MixResult[K]:
        """One tick. A participant missing from `inputs`, or mapped to None, is silent."""
        if self._pair is not None:
            return self._mix_pair(inputs)
        staging = self._staging
        get = inputs.get
        if self._speaker_ids:
            # One C-level copy of every voice into the int32 staging rows.
            staging[...] = [SILENCE if (f := get(pid)) is None else f for pid in self._speaker_ids]
        n_full = self._n_full
        n_hearing = len(self._hearing_ids)
        full_in = staging[:n_full]
        total = np.add.reduce(full_in, axis=0)
        # Every output row, then the recording's left and right rows, saturated in one go.
        block = np.empty((n_hearing + 2 * self._record, SAMPLES_PER_FRAME), dtype=np.int32)
        np.subtract(total, full_in, out=block[:n_full])
        block[n_full:n_hearing] = total
        if self._whisper_ids:
            if self._default_whisperers.size and self._default_rows.size:
                block[self._default_rows] += np.add.reduce(
                    staging[self._default_whisperers], axis=0
                )
            for src, dst in self._targeted:
                block[dst] += staging[src]
        if self._record:
            left, right = block[n_hearing], block[n_hearing + 1]
            if self._left_rows.size == 1:
                left[...] = full_in[self._left_rows[0]]
            elif self._left_rows.size:
                np.add.reduce(full_in[self._left_rows], axis=0, out=left)
            else:
                left[...] = 0
            np.subtract(total, left, out=right)
            if self._whisper_ids:
                right += np.add.reduce(staging[n_full:], axis=0)
        # Clip, never wrap: two loud talkers must distort, not turn into a full-scale crack.
        # (Two ufuncs: cheaper than np.clip's Python wrapper on arrays this small.)
        np.maximum(block, -32768, out=block)
        np.minimum(block, 32767, out=block)
        heard = block.astype(np.int16)
        outputs: dict[K, Frame] = dict(zip(self._hearing_ids, heard, strict=False))
        if self._hold_ids:
            held = SILENCE if music is None else music
            for pid in self._hold_ids:
                outputs[pid] = held
        recording = np.ascontiguousarray(heard[n_hearing:].T) if self._record else None
        return MixResult(outputs=outputs, recording=recording)

    def _mix_pair(self, inputs: Mapping[K, Frame | None]) -> MixResult[K]:
        # Two full parties: each hears the other's frame as is, and nothing can overflow.
        # Copied all the same, so outputs never alias a leg's decode buffer.
        assert self._pair is not None
        first, second = self._pair
        a, b = inputs.get(first), inputs.get(second)
        heard = np.empty((2, SAMPLES_PER_FRAME), dtype=np.int16)
        heard[0] = SILENCE if b is None else b
        heard[1] = SILENCE if a is None else a
        recording = None
        if self._record:
            # Recording implies the pair is (caller, agent): left is what the agent hears.
            recording = np.empty((SAMPLES_PER_FRAME, 2), dtype=np.int16)
            recording[:, 0] = heard[1]
            recording[:, 1] = heard[0]
        return MixResult(outputs={first: heard[0], second: heard[1]}, recording=recording)


def mix(
    participants: Sequence[Participant[K]],
    inputs: Mapping[K, Frame | None],
    music: Frame | None = None,
    *,
    record: bool = True,
) -> MixResult[K]:
    """One tick for a membership given afresh (tests, one-off use); the engine keeps a
    `RoomMixer` per room instead and rebuilds it only when the membership changes."""
    return RoomMixer(participants, record=record).mix(inputs, music)
