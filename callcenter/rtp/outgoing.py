"""The numbering of one outgoing RTP stream: our SSRC, sequence numbers and timestamps, for
the frames we make and for another source's packets that we relay without decoding.

Owns the header fields a leg sends with, so that whoever fills the stream (a player, a
room's mixer, or the forwarding fast path of a two-party room) the receiver sees one stream:
one SSRC, sequence numbers running on by one, timestamps that follow the time that passed.
Knows nothing of payloads, codecs, sockets or clocks: `now` (seconds, any monotonic clock)
is passed in.

Own frames (`frame`, then `next_seq` for each packet sent): one per media tick, and the
timestamp advances one frame. After a pause (no packet for more than `pause_after`) it
jumps by the frames that passed, and the marker is set.

Relayed packets (`relay`): another source's sequence numbers and timestamps are mapped by
offset, so its timing, gaps, losses and reordering carry through unchanged. A mapping is
fixed at its first packet, chosen so that the stream goes on from where it stood (the next
sequence number; the timestamp of the time that passed, to the nearest frame), and that
packet carries the marker. A new mapping starts at the first packet relayed after own
frames, when the source's SSRC changes and when its sequence number jumps (a restart). A
packet older than the mapping's first is dropped: its number would land on one already
sent. The first own frame after relayed packets carries the marker too.

`ts` is always the end of the media sent so far (the timestamp the next frame would carry),
and `last_at` the time the packet that reached it was sent.
"""

from __future__ import annotations

from .seq import MAX_DROPOUT, MAX_MISORDER

_SEQ_MASK = 0xFFFF
_TS_MASK = 0xFFFF_FFFF


class OutgoingStream:
    """Sequence numbers and timestamps for everything one leg sends (see the module doc)."""

    __slots__ = (
        "_relaying",
        "_seq_offset",
        "_span",
        "_src_max",
        "_src_ssrc",
        "_ts_offset",
        "interval",
        "last_at",
        "pause_after",
        "seq",
        "ssrc",
        "step",
        "ts",
    )

    def __init__(
        self,
        ssrc: int,
        seq: int,
        ts: int,
        *,
        step: int = 160,
        interval: float = 0.02,
        pause_after: float = 0.06,
    ) -> None:
        if not 0 <= ssrc <= _TS_MASK or not 0 <= seq <= _SEQ_MASK or not 0 <= ts <= _TS_MASK:
            raise ValueError("ssrc, seq or ts out of range")
        if step <= 0 or interval <= 0 or pause_after < interval:
            raise ValueError("step and interval must be positive, pause_after >= interval")
        self.ssrc = ssrc
        self.seq = seq
        """The sequence number of the next packet."""
        self.ts = ts
        self.step = step
        """Timestamp units per frame (160: 20 ms at 8000 Hz)."""
        self.interval = interval
        self.pause_after = pause_after
        self.last_at: float | None = None
        self._relaying = False
        self._src_ssrc = 0
        self._src_max = 0
        self._span = 0
        self._seq_offset = 0
        self._ts_offset = 0

    @property
    def relaying(self) -> bool:
        """True while a relay mapping is in force (no own frame since its first packet)."""
        return self._relaying

    def _resume(self, now: float, switching: bool) -> bool:
        """Move `ts` on by the frames that passed since the last packet: after a pause, or
        at a switch between own frames and relayed packets (two clocks: the ticks and the
        source's arrivals), not for a late tick (the next one is on time again). True at
        the first packet of the stream and after a pause (the marker)."""
        last = self.last_at
        if last is None:
            return True
        elapsed = now - last
        pause = elapsed > self.pause_after
        if pause or switching:
            skipped = round(elapsed / self.interval) - 1
            if skipped > 0:
                self.ts = (self.ts + skipped * self.step) & _TS_MASK
        return pause

    # --- own frames ----------------------------------------------------------------------------

    def frame(self, now: float) -> tuple[int, bool]:
        """The timestamp and marker of the frame sent at `now`; the stream moves one frame on.

        Call once per tick (a tick that sends a telephone-event packet instead of audio
        included: the event's timestamp is this one), then `next_seq` per packet sent."""
        marker = self._resume(now, self._relaying)
        if self._relaying:
            self._relaying = False
            marker = True
        ts = self.ts
        self.ts = (ts + self.step) & _TS_MASK
        self.last_at = now
        return ts, marker

    def next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) & _SEQ_MASK
        return seq

    # --- relayed packets -----------------------------------------------------------------------

    def relay(
        self, ssrc: int, seq: int, ts: int, now: float, extent: int
    ) -> tuple[int, int, bool] | None:
        """Our sequence number, timestamp and marker for a source's packet (its `ssrc`,
        `seq`, `ts`) arriving at `now`; None to drop it (older than the mapping).

        `extent` is how far the packet reaches past its timestamp (`step` for a frame of
        audio, the duration of a telephone event), so own frames after it start after it.
        The returned marker says the mapping is new: OR it with the source's own marker.
        """
        if self._relaying and ssrc == self._src_ssrc:
            # seq_delta and ts_delta written out: this runs for every packet relayed.
            delta = ((seq - self._src_max + 0x8000) & _SEQ_MASK) - 0x8000
            if 0 < delta < MAX_DROPOUT:
                # The usual case: the next packet (or one after a few lost).
                self._src_max = seq
                self._span += delta
                out_seq = (seq + self._seq_offset) & _SEQ_MASK
                out_ts = (ts + self._ts_offset) & _TS_MASK
                self.seq = (out_seq + 1) & _SEQ_MASK
                end = (out_ts + extent) & _TS_MASK
                if 0 < (end - self.ts) & _TS_MASK < 0x8000_0000:
                    self.ts = end
                    self.last_at = now
                return out_seq, out_ts, False
            if -MAX_MISORDER <= delta <= 0:
                # Reordered or duplicated: passed on as such, unless it comes from before
                # the mapping began.
                if -delta > self._span:
                    return None
                return (
                    (seq + self._seq_offset) & _SEQ_MASK,
                    (ts + self._ts_offset) & _TS_MASK,
                    False,
                )
            # Otherwise a jump: the source restarted. Map afresh.
        self._resume(now, True)
        out_seq = self.seq
        out_ts = self.ts
        self._relaying = True
        self._src_ssrc = ssrc
        self._src_max = seq
        self._span = 0
        self._seq_offset = out_seq - seq
        self._ts_offset = out_ts - ts
        self.seq = (out_seq + 1) & _SEQ_MASK
        self.ts = (out_ts + extent) & _TS_MASK
        self.last_at = now
        return out_seq, out_ts, True

    def __repr__(self) -> str:
        mode = "relaying" if self._relaying else "own"
        return f"<OutgoingStream ssrc={self.ssrc:#010x} seq={self.seq} ts={self.ts} {mode}>"
