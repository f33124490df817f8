"""A browser leg: one agent page's audio, as 20 ms frames over the page's WebSocket.

Owns the frame format of docs/agent-api.md ("Audio (binary frames, both ways)"): the 8-byte
header (kind 1, codec, two reserved octets, a 32-bit big-endian sequence number), the size
bound, G.711 µ-law (the codec registry's PCMU) or 16-bit little-endian PCM; the receiving
side's play-out buffer keyed by the page's sequence numbers; and the sending side's numbering,
which goes on across sockets: a reload attaches a new socket to the same leg and the call
carries on.

Must not know WebSockets, HTTP, calls, rooms or the clock: the web layer gives each binary
message to `receive` and a non-blocking `send` to `attach` (queueing is its job); whoever owns
the leg on the media clock (a room or a player) calls `read_frame` and `write_frame` once per
tick. Nothing here creates a task, a future or a log line per frame: the ring keeps the
page's messages as they came (bytes are immutable) and a frame is decoded only when its tick
plays it, into one buffer, so frames dropped or duplicated cost nothing.

Play-out. Frames are placed by sequence number (serial arithmetic on 32 bits, RFC 1982) in a
ring of the page's messages. The first frame of a stream waits `target` ticks (the pre-roll).
A missing frame is concealed by silence when a later one is already there; when nothing later
is there the tick plays silence without moving on (the page's frames ride TCP: they come late,
in a burst, rather than never), so the delay grows by what the stall took. `target` follows:
it rises by the ticks a starvation lasted, and by one for a frame that comes after its turn,
up to `max_frames`; after SHRINK_AFTER calm ticks it comes down one frame, to
`target_frames`. The delay follows the target down: when for a whole TRIM_WINDOW more than
`target` frames stayed buffered, one frame is dropped (all the excess at once when it is
beyond `max_frames`: after a long stall, latency matters more than the audio that was late).

Restarts. A frame far behind the play-out point (more than the ring), a run of RESTART_RUN
old frames in sequence (late or repeated), a forward jump beyond MAX_DROPOUT, the first frame
after the stream starved for STARVED_RESET ticks, and every `attach` (a new socket is a new
page, whose count may start again at 0) start the buffer afresh instead of waiting for the
old numbering.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, Literal

import numpy as np

from ...media import PCMU, SAMPLES_PER_FRAME, SILENCE, Frame
from ...media.g711 import ULAW_DECODE

KIND_AUDIO: Final = 1
HEADER_BYTES: Final = 8
CODEC_IDS: Final = {"pcmu": 0, "l16": 1}
"""The codec octet of the header: 0 is G.711 µ-law, 1 is 16-bit little-endian PCM."""

_PCMU_MESSAGE: Final = HEADER_BYTES + SAMPLES_PER_FRAME
_L16_MESSAGE: Final = HEADER_BYTES + 2 * SAMPLES_PER_FRAME
_L16_WIRE: Final = np.dtype("<i2")
_SEQ: Final = struct.Struct(">I")
_MOD: Final = 0xFFFF_FFFF
_HALF: Final = 0x8000_0000

RESTART_RUN: Final = 3
"""Late frames in sequence that mean the page numbers from somewhere behind us (restarted)."""
MAX_DROPOUT: Final = 3000
"""A forward jump beyond this many frames (60 s) is a new stream, not loss (RFC 3550 A.1)."""
STARVED_RESET: Final = 50
"""Ticks with nothing to play (1 s) after which the page is taken to have stopped sending."""
SHRINK_AFTER: Final = 150
"""Ticks without starvation or a late frame (3 s) before the target comes down one frame."""
TRIM_WINDOW: Final = 25
"""Ticks (0.5 s) over which more than `target` frames must stay buffered before a drop."""
MAX_TARGET: Final = 50

# Slot states of the ring.
_EMPTY: Final = 0
_FILLED: Final = 1  # the page's message, waiting for its tick
_DONE: Final = 2  # played or dropped: the frame came
_MISSED: Final = 3  # its tick passed without it (concealed or skipped)

Codec = Literal["pcmu", "l16"]
Sink = Callable[[bytes], None]


def _serial(a: int, b: int) -> int:
    """a - b for 32-bit sequence numbers: negative when a is before b (RFC 1982)."""
    return ((a - b + _HALF) & _MOD) - _HALF


class BrowserLeg:
    """One page's audio. Counters: `frames_in` (well-formed frames received while attached),
    `played`, `concealed` (ticks of silence for a missing frame), `lost` (sequence numbers
    not received, RFC 3550's expected minus received; a frame that comes late still counts as
    received), `late`, `duplicates`, `malformed`, `dropped` (received but skipped to cut the
    delay), `resets`, `frames_out` (sent), `frames_unsent` (written while detached),
    `send_errors` (the sink raised). `target` is the current play-out delay goal in frames.
    """

    __slots__ = (
        "_calm",
        "_capacity",
        "_closed",
        "_data",
        "_frame",
        "_highest",
        "_hold",
        "_late_next",
        "_late_run",
        "_mask",
        "_next",
        "_out",
        "_out_l16",
        "_out_u8",
        "_pending",
        "_send_codec",
        "_send_seq",
        "_seqs",
        "_sink",
        "_starved",
        "_state",
        "_synced",
        "_trim_count",
        "_trim_min",
        "concealed",
        "dropped",
        "duplicates",
        "frames_in",
        "frames_out",
        "frames_unsent",
        "late",
        "lost",
        "malformed",
        "max_frames",
        "owner",
        "played",
        "resets",
        "send_errors",
        "target",
        "target_frames",
    )

    def __init__(
        self, *, codec: Codec = "pcmu", target_frames: int = 2, max_frames: int = 6
    ) -> None:
        if codec not in CODEC_IDS:
            raise ValueError(f"unknown browser codec {codec!r}")
        if not 0 <= target_frames <= max_frames <= MAX_TARGET:
            raise ValueError(f"need 0 <= target_frames <= max_frames <= {MAX_TARGET}")
        self.owner: object | None = None
        """The player or room the leg is in (a leg is in at most one)."""
        self.target_frames = target_frames
        self.max_frames = max_frames
        self.target = target_frames
        self.frames_in = self.played = self.concealed = self.lost = self.late = 0
        self.duplicates = self.malformed = self.dropped = self.resets = 0
        self.frames_out = self.frames_unsent = self.send_errors = 0
        self._sink: Sink | None = None
        self._closed = False
        # Receiving: a ring of the page's messages, indexed by sequence number & mask (2**32
        # is a multiple of the ring's size, so the index runs on across the wrap).
        capacity = 16
        while capacity < 4 * max_frames:
            capacity *= 2
        self._capacity = capacity
        self._mask = capacity - 1
        self._data: list[bytes | None] = [None] * capacity
        self._frame: Frame = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
        self._seqs = [0] * capacity
        self._state = bytearray(capacity)
        self._synced = False
        self._next = self._highest = self._pending = self._hold = self._starved = 0
        self._late_run = self._late_next = self._calm = self._trim_count = 0
        self._trim_min = 1 << 30
        # Sending: one message buffer; the payload is encoded in place, then copied to bytes.
        self._send_codec = CODEC_IDS[codec]
        self._send_seq = 0
        size = _PCMU_MESSAGE if codec == "pcmu" else _L16_MESSAGE
        self._out = bytearray(size)
        self._out[0] = KIND_AUDIO
        self._out[1] = self._send_codec
        self._out_u8 = np.frombuffer(self._out, dtype=np.uint8, offset=HEADER_BYTES)
        self._out_l16 = np.frombuffer(self._out, dtype=_L16_WIRE, offset=HEADER_BYTES)

    # --- the page's socket -----------------------------------------------------------------

    def attach(self, send: Sink) -> None:
        """A (new) socket of the page: frames are sent to `send` from now on, numbered on
        from the last one sent. What was buffered from the page is forgotten."""
        if self._closed:
            return
        self._sink = send
        self._forget()

    def detach(self, send: Sink) -> None:
        """The socket `send` went; nothing changes if another one has attached since."""
        if self._sink is not None and self._sink == send:
            self._sink = None
            self._forget()

    @property
    def attached(self) -> bool:
        return self._sink is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Detach for good: later `attach`, `receive` and `write_frame` are ignored."""
        self._closed = True
        self._sink = None
        self._forget()

    # --- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """One binary message from the page (kept, not copied, until its tick: pass bytes,
        not a buffer that will be reused). Anything but one well-formed frame is counted in
        `malformed` and dropped; nothing here raises."""
        if self._sink is None:
            return  # detached or closed: nobody would hear it
        size = len(data)
        # The size is bound first: it alone says which codec the frame may be in.
        if size == _PCMU_MESSAGE:
            codec = 0
        elif size == _L16_MESSAGE:
            codec = 1
        else:
            self.malformed += 1
            return
        if data[0] != KIND_AUDIO or data[1] != codec:
            self.malformed += 1
            return
        (seq,) = _SEQ.unpack_from(data, 4)
        self.frames_in += 1
        if not self._synced or self._starved >= STARVED_RESET:
            self._restart(seq)
        d = _serial(seq, self._next)
        if d < 0:
            self._behind(seq, d, data)
            return
        self._late_run = 0
        if d >= self._mask:
            # Beyond the ring (the page ran far ahead, or we were not ticked): the play-out
            # point jumps so this frame plays after `target` ticks; older frames are dropped.
            if d > MAX_DROPOUT:
                self._restart(seq)
            else:
                self._skip(d - self.target)
        self._store(seq, data)

    def _behind(self, seq: int, d: int, data: bytes) -> None:
        """A frame before the play-out point: a duplicate, late, or a restarted count."""
        run = self._late_run + 1 if seq == self._late_next else 1
        self._late_run = run
        self._late_next = (seq + 1) & _MOD
        if d < -self._capacity or run >= RESTART_RUN:
            # Over TCP frames neither repeat nor overtake each other: a run of old numbers
            # is the page counting again from where it restarted.
            self._restart(seq)
            self._store(seq, data)
            return
        index = seq & self._mask
        if self._seqs[index] == seq:
            state = self._state[index]
            if state == _DONE:
                self.duplicates += 1
                return
            if state == _MISSED and self.lost:
                self.lost -= 1  # it came after all
        self.late += 1
        self._grow(1)

    def _store(self, seq: int, data: bytes) -> None:
        index = seq & self._mask
        state = self._state
        if state[index] == _FILLED:
            self.duplicates += 1  # the only frame the slot can hold is this one
            return
        state[index] = _FILLED
        self._data[index] = data
        self._seqs[index] = seq
        self._pending += 1
        ahead = _serial(seq, self._highest)
        if ahead > 0:
            self.lost += ahead - 1
            self._highest = seq
        elif ahead < 0 and self.lost:
            self.lost -= 1  # a gap filled by a frame that came out of order
        if self._starved:
            # The page's frames came this many ticks later than the delay allowed for.
            self._grow(self._starved)
            self._starved = 0

    def _grow(self, frames: int) -> None:
        self.target = min(self.max_frames, self.target + frames)
        self._calm = 0

    def _restart(self, seq: int) -> None:
        """A new stream starting at `seq`: the ring is emptied, the pre-roll starts."""
        if self._synced:
            self.resets += 1
        self._forget()
        self._synced = True
        self._next = self._highest = seq
        self._hold = self.target

    def _forget(self) -> None:
        self._synced = False
        self._state[:] = bytes(self._capacity)
        self._data[:] = [None] * self._capacity
        self._pending = self._hold = self._starved = self._late_run = self._trim_count = 0
        self._trim_min = 1 << 30

    def _skip(self, count: int) -> None:
        """Move the play-out point `count` frames on, dropping what was buffered there."""
        state = self._state
        nxt = self._next
        for _ in range(min(count, self._capacity)):
            index = nxt & self._mask
            if state[index] == _FILLED:
                state[index] = _DONE
                self._data[index] = None
                self._pending -= 1
                self.dropped += 1
            else:
                state[index] = _MISSED
                self._seqs[index] = nxt
            nxt = (nxt + 1) & _MOD
        self._next = (self._next + count) & _MOD

    # --- the tick ----------------------------------------------------------------------------

    def read_frame(self) -> Frame:
        """This tick's frame from the page, or silence. The array is the leg's own buffer,
        valid until the next `read_frame` (copy it to keep it)."""
        if not self._synced:
            return SILENCE
        if self._hold:
            self._hold -= 1
            return SILENCE
        nxt = self._next
        ahead = _serial(self._highest, nxt)
        if ahead < 0:
            # Nothing buffered: wait for the page's next frame rather than move past it.
            self._starved += 1
            return SILENCE
        self._pace(ahead)
        nxt = self._next
        index = nxt & self._mask
        self._next = (nxt + 1) & _MOD
        state = self._state
        if state[index] == _FILLED:
            state[index] = _DONE
            data = self._data[index]
            self._data[index] = None
            self._pending -= 1
            self.played += 1
            assert data is not None
            frame = self._frame
            if data[1] == 0:
                # The G.711 table straight on the message: PCMU.decode would want a
                # memoryview slice of it first (two more objects per frame).
                codes = np.frombuffer(data, dtype=np.uint8, offset=HEADER_BYTES)
                return ULAW_DECODE.take(codes, mode="clip", out=frame)
            np.copyto(frame, np.frombuffer(data, dtype=_L16_WIRE, offset=HEADER_BYTES))
            return frame
        state[index] = _MISSED
        self._seqs[index] = nxt
        self.concealed += 1
        return SILENCE

    def _pace(self, ahead: int) -> None:
        """Bring the target down after a calm spell and the delay down to the target."""
        calm = self._calm + 1
        if calm >= SHRINK_AFTER:
            calm = 0
            if self.target > self.target_frames:
                self.target -= 1
        self._calm = calm
        if ahead < self._trim_min:
            self._trim_min = ahead
        self._trim_count += 1
        if self._trim_count < TRIM_WINDOW:
            return
        excess = self._trim_min - self.target
        self._trim_count = 0
        self._trim_min = 1 << 30
        if excess > 0:
            self._skip(excess if excess + self.target > self.max_frames else 1)

    def write_frame(self, frame: Frame) -> None:
        """Send one 20 ms frame to the page, or count it in `frames_unsent` while detached."""
        sink = self._sink
        if sink is None:
            if not self._closed:
                self.frames_unsent += 1
            return
        out = self._out
        _SEQ.pack_into(out, 4, self._send_seq)
        if self._send_codec == 0:
            PCMU.encode_into(frame, self._out_u8)
        else:
            np.copyto(self._out_l16, frame)
        self._send_seq = (self._send_seq + 1) & _MOD
        self.frames_out += 1
        try:
            sink(bytes(out))
        except Exception:
            # The web layer's queue failed; the room must go on for the other parties.
            self.send_errors += 1

    # --- inspection ------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Frames received and waiting for their tick."""
        return self._pending

    @property
    def delay(self) -> int:
        """Frames from the play-out point to the newest received (0 when idle)."""
        if not self._synced:
            return 0
        return max(0, _serial(self._highest, self._next) + 1) + self._hold

    @property
    def next_seq(self) -> int:
        """The sequence number the next frame sent will carry."""
        return self._send_seq

    def __repr__(self) -> str:
        state = "closed" if self._closed else "attached" if self._sink else "detached"
        return f"<BrowserLeg {state} target={self.target} buffered={self._pending}>"
