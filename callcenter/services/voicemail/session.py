"""One caller leaving one message, on an answered call whose leg is free.

Owns the call's media while the message is taken: the greeting and the beep (a
`PromptPlayer`), the recording (a `MessageRecorder`, stopped by '#' from `leg.on_digit`, by
its maximum length, by the disk failing), the goodbye and the BYE; or nothing more when the
caller hangs up. It puts itself on the media clock and takes `leg.on_digit` and `call.on_end`
for that time, chaining the `on_end` it found (the IVR's or the ACD's) and giving both back at
the end. Must not know SIP, sockets or the database: `Calls` hangs up, the service keeps files.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from callcenter.engine.calls import Call, Calls
from callcenter.engine.media import Prompt, PromptPlayer
from callcenter.services.audiofiles import WavFileWriter

from .recorder import STOP_DIGIT, STOP_HANGUP, STOP_SHUTDOWN, MessageRecorder

log = logging.getLogger(__name__)

STOP_DIGIT_KEY = "#"


class Phase(enum.Enum):
    GREETING = "greeting"  # the greeting, then the beep
    RECORDING = "recording"
    GOODBYE = "goodbye"
    ENDED = "ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailPrompts:
    greeting: Prompt
    beep: Prompt
    goodbye: Prompt


class VoicemailSession:
    """Ticked by the media clock; ticks its player or recorder.

    `recorded` is done when no more audio will be recorded (stopped, or never started),
    `ended` when the session let go of the call (hung up, or the caller gone). `writer` None
    means the file could not be made: the caller hears the goodbye at once.
    """

    def __init__(
        self,
        calls: Calls,
        call: Call,
        prompts: VoicemailPrompts,
        writer: WavFileWriter | None,
        *,
        max_seconds: float,
        call_id: str,
    ) -> None:
        self.calls = calls
        self.call = call
        self.leg = call.leg
        self.prompts = prompts
        self.writer = writer
        self.max_seconds = max_seconds
        self.call_id = call_id
        self.phase = Phase.GREETING
        self.recorder: MessageRecorder | None = None
        self.stopped_by: str | None = None
        loop = asyncio.get_running_loop()
        self.recorded: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self._player: PromptPlayer | None = None
        self._previous_on_end: Callable[[], None] | None = None
        self._previous_on_digit: Callable[[str], None] | None = None
        self._hangup: asyncio.Handle | None = None
        self._on_clock = False

    # --- the call ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Take the call's media and start the greeting; the session ends at once if the
        caller has gone already. Raises `LegBusy` (before touching anything) if the leg is
        still in a player or room."""
        if self.calls.get(self.call.dialog_id) is not self.call:
            log.info("call %s: the caller left before the voicemail greeting", self.call_id)
            self._finish()
            return
        if self.writer is None:
            self._player = PromptPlayer(self.leg, self.prompts.goodbye, on_done=self._hang_up)
            self.phase = Phase.GOODBYE
            self._recorded()
        else:
            self._player = PromptPlayer(self.leg, self.prompts.greeting, on_done=self._greeted)
        self._previous_on_end = self.call.on_end
        self.call.on_end = self._call_ended
        self._previous_on_digit = self.leg.on_digit
        self.leg.on_digit = self._digit
        self.calls.clock.add(self)
        self._on_clock = True

    def tick(self, n: int) -> None:
        # The recorder is checked first: starting it detaches the player within a tick.
        recorder = self.recorder
        if recorder is not None and recorder.stopped is None:
            recorder.tick(n)
        elif self._player is not None:
            self._player.tick(n)

    def stop(self) -> None:
        """The service is stopping: keep what was recorded and hang up now."""
        if self.phase is Phase.ENDED:
            return
        if self.recorder is not None and self.recorder.stopped is None:
            self.recorder.stop(STOP_SHUTDOWN)
        self._send_bye()

    # --- the steps --------------------------------------------------------------------------

    def _greeted(self) -> None:
        if self._player is not None and self.phase is Phase.GREETING:
            self._player.play(self.prompts.beep, on_done=self._start_recording)

    def _start_recording(self) -> None:
        if self.phase is not Phase.GREETING or self.writer is None:
            return
        if self._player is not None:
            self._player.detach()
            self._player = None
        self.phase = Phase.RECORDING
        self.recorder = MessageRecorder(
            self.leg, self.writer, max_seconds=self.max_seconds, on_stopped=self._stopped
        )
        log.info("call %s: recording a voicemail message", self.call_id)

    def _digit(self, digit: str) -> None:
        if digit == STOP_DIGIT_KEY and self.phase is Phase.RECORDING and self.recorder is not None:
            self.recorder.stop(STOP_DIGIT)

    def _stopped(self, reason: str) -> None:
        """The recorder stopped: say goodbye, unless the caller is gone or we are stopping."""
        self.stopped_by = reason
        recorder = self.recorder
        assert recorder is not None
        recorder.detach()
        log.info(
            "call %s: voicemail recording stopped (%s) after %.1f s",
            self.call_id,
            reason,
            recorder.seconds,
        )
        self._recorded()
        if reason in (STOP_HANGUP, STOP_SHUTDOWN) or self.phase is not Phase.RECORDING:
            return
        self.phase = Phase.GOODBYE
        self._player = PromptPlayer(self.leg, self.prompts.goodbye, on_done=self._hang_up)

    def _hang_up(self) -> None:
        # Not from inside the media tick that played the last frame.
        if self._hangup is None and self.phase is not Phase.ENDED:
            self._hangup = asyncio.get_running_loop().call_soon(self._send_bye)

    def _send_bye(self) -> None:
        self._hangup = None
        if self.calls.get(self.call.dialog_id) is self.call:
            self.calls.hang_up(self.call.dialog_id)  # its on_end ends the session
        else:
            self._finish()

    def _call_ended(self) -> None:
        """The call is over (the caller hung up, or our BYE): end, then tell whoever was
        told before us."""
        previous = self._previous_on_end
        if self.recorder is not None and self.recorder.stopped is None:
            self.recorder.stop(STOP_HANGUP)
        elif self.phase is Phase.GREETING:
            log.info("call %s: the caller left during the voicemail greeting", self.call_id)
        self._finish()
        if previous is not None:
            previous()

    def _recorded(self) -> None:
        if not self.recorded.done():
            self.recorded.set_result(None)

    def _finish(self) -> None:
        if self.phase is Phase.ENDED and self.ended.done():
            return
        self.phase = Phase.ENDED
        if self._hangup is not None:
            self._hangup.cancel()
            self._hangup = None
        if self._on_clock:
            self.calls.clock.remove(self)
            self._on_clock = False
        if self._player is not None:
            self._player.detach()
            self._player = None
        recorder = self.recorder
        if recorder is not None:
            if recorder.stopped is None:
                recorder.stop(STOP_SHUTDOWN)
            recorder.detach()
        if self.leg.on_digit == self._digit:
            self.leg.on_digit = self._previous_on_digit
        if self.call.on_end == self._call_ended:
            self.call.on_end = self._previous_on_end
        self._previous_on_end = self._previous_on_digit = None
        self._recorded()
        if not self.ended.done():
            self.ended.set_result(None)

    def __repr__(self) -> str:
        return f"<VoicemailSession {self.call_id} {self.phase.value}>"
