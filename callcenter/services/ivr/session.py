"""The IVR on a live call: the interpreter's actions executed on the call's leg.

Owns one answered call from the moment the IVR answers it until the flow's final action: the
prompts played (a `PromptPlayer`, chained with no gap), the digits read from `leg.on_digit`
(RFC 4733 or in-band; they cut a menu's or gather's prompts short, as the interpreter expects),
the digit timeouts (loop timers, started when the prompts end, cancelled when the call ends),
the call variables and the timeline. The final action: a queue plays hold music and hands the
session to the `on_queued` hook (the ACD, which detaches the music with `release_media()`);
voicemail and transfer go to their hooks (the ACD runtime places them); hangup sends BYE.
With a `CallLog`, the arrival, every node, the digits and an end in the IVR go on the call
record. Must not know SIP, sockets or RTP: the engine's `Calls` answers and hangs up.

`IvrApplication` is what the router hands a call for `ivr` / `flow:NAME` (the engine only
knows it as a `routing.CallApplication`): it picks the flow, loads its prompts (rendered
once, then from the cache) and starts a session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import numpy as np

from callcenter.engine.calls import Call, Calls, PendingCall
from callcenter.engine.media import MusicPlayer, Prompt, PromptPlayer, load_music
from callcenter.services.audit import RECORDING_PAUSE, RECORDING_RESUME, AuditLog
from callcenter.services.callrecords import CallLog
from callcenter.services.ivr.flow import Flow
from callcenter.services.ivr.interpreter import (
    DigitsEntered,
    EnqueueCall,
    Event,
    FinalAction,
    HangUpCall,
    InputTimedOut,
    IvrState,
    NodeEntered,
    Phase,
    PlayPrompt,
    PromptFinished,
    SetVariable,
    StartVoicemail,
    Step,
    TransferCall,
    WaitForDigits,
    describe,
    start,
    step,
)
from callcenter.services.ivr.prompts import PromptLibrary
from callcenter.services.ivr.registry import FlowRegistry
from callcenter.services.recordings import CallRecorder, RecordingService
from callcenter.sip import SipUri

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
QueueHook = Callable[["IvrSession", EnqueueCall], None]
VoicemailHook = Callable[["IvrSession", StartVoicemail], None]
TransferHook = Callable[["IvrSession", TransferCall], None]

# What a prompt cut short is replaced by: an empty prompt ends at once and plays silence.
_SILENT = Prompt(np.zeros(0, dtype=np.int16), name="<silence>")

# The call variable a flow sets to pause the recording (a card number keyed or read out) and
# to resume it: `set: {recording: paused}` ... `set: {recording: active}`.
RECORDING_VARIABLE = "recording"
RECORDING_PAUSED = "paused"
RECORDING_ACTIVE = "active"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IvrSession:
    """One call in one flow. The engine ticks it (`media` of the call); it ticks its player."""

    def __init__(
        self,
        flow: Flow,
        prompts: Mapping[str, Prompt],
        *,
        calls: Calls,
        pending: PendingCall,
        music: Prompt,
        clock: Clock = utc_now,
        on_queued: QueueHook | None = None,
        on_voicemail: VoicemailHook | None = None,
        on_transfer: TransferHook | None = None,
        on_finished: Callable[[IvrSession], None] | None = None,
        call_log: CallLog | None = None,
        recordings: RecordingService | None = None,
        on_recording_paused: Callable[[IvrSession, bool], None] | None = None,
    ) -> None:
        self.flow = flow
        self.prompts = prompts
        self.calls = calls
        self.pending = pending
        self.leg = pending.leg
        self.music = music
        self.clock = clock
        self.on_queued = on_queued
        self.on_voicemail = on_voicemail
        self.on_transfer = on_transfer
        self.on_finished = on_finished
        self.call_log = call_log
        # With `recordings`, the call is recorded from the IVR's answer (caller left, prompts
        # right); the ACD takes the recording over at the queue (`take_recording`).
        self.recordings = recordings
        self.recording: CallRecorder | None = None
        self.on_recording_paused = on_recording_paused
        self.call_id = pending.request.call_id
        self.call: Call | None = None
        self.variables: dict[str, str] = {}
        self.timeline: list[NodeEntered] = []
        self.final: FinalAction | None = None
        self.ended = False
        self._state: IvrState | None = None
        self._player: PromptPlayer | MusicPlayer | None = None
        self._waiting: WaitForDigits | None = None
        self._digits = ""
        self._playing = False  # the current step's prompts are still being played
        self._generation = 0  # bumped per step: callbacks of an older step are stale
        self._timer: asyncio.TimerHandle | None = None
        self._hangup: asyncio.Handle | None = None

    # --- the engine's side --------------------------------------------------------------------

    def begin(self) -> bool:
        """Answer the call and run the flow's first step; False if the caller left first."""
        self._player = PromptPlayer(self.leg, _SILENT)
        call = self.calls.answer(self.pending, media=self, on_end=self._call_ended)
        if call is None:
            self._close()
            return False
        self.call = call
        self.leg.on_digit = self._digit
        if self.recordings is not None:
            self.recording = self.recordings.begin(self.call_id)
            self.recording.note("ivr", flow=self.flow.name)
            self._player.on_recording = self.recording.write
        log.info("call %s: IVR flow %s", self.call_id, self.flow.name)
        if self.call_log is not None:
            request = self.pending.request
            uri = request.from_addr.uri
            caller = uri.user_unescaped if isinstance(uri, SipUri) else None
            to = request.to_addr.uri
            self.call_log.arrived(
                self.call_id,
                caller=(caller or "")[:64],
                caller_name=(request.from_addr.display_text or "")[:128],
                dialled=((to.user_unescaped if isinstance(to, SipUri) else None) or "")[:64],
            )
            self.call_log.event(self.call_id, "ivr-started", flow=self.flow.name)
        self._run(lambda: start(self.flow, self.clock()))
        return True

    def tick(self, n: int) -> None:
        player = self._player
        if player is not None:
            player.tick(n)

    def release_media(self) -> None:
        """Stop playing into the leg (hold music included): the ACD puts it elsewhere."""
        if self._player is not None:
            self._player.detach()
            self._player = None

    def close(self) -> None:
        """Stop timers and players without touching the call (the engine hangs it up)."""
        self._close()

    def take_recording(self) -> CallRecorder | None:
        """The call's recording, now the caller's next owner's (the ACD's) to feed and end."""
        recording, self.recording = self.recording, None
        return recording

    def _finish_recording(self) -> None:
        if self.recording is not None and self.recordings is not None:
            self.recordings.finish(self.recording)
        self.recording = None

    def _recording_variable(self, value: str) -> None:
        recording = self.recording
        if recording is None:
            return
        if value == RECORDING_PAUSED:
            changed = recording.pause("ivr", asyncio.get_running_loop().time())
        elif value == RECORDING_ACTIVE:
            changed = recording.resume("ivr")
        else:
            log.error("call %s: recording=%r is neither paused nor active", self.call_id, value)
            return
        if changed:
            if self.call_log is not None:
                self.call_log.event(
                    self.call_id,
                    "recording-paused" if recording.paused else "recording-resumed",
                    by="ivr",
                )
            if self.on_recording_paused is not None:
                self.on_recording_paused(self, recording.paused)

    # --- running the interpreter --------------------------------------------------------------

    def _run(self, make_step: Callable[[], Step]) -> None:
        try:
            self._apply(make_step())
        except Exception:
            log.exception("call %s: IVR failed at %s", self.call_id, self._node)
            self._hang_up()

    @property
    def _node(self) -> str:
        return self._state.node if self._state is not None else self.flow.start

    def _feed(self, event: Event) -> None:
        state = self._state
        assert state is not None
        if isinstance(event, DigitsEntered) and self.call_log is not None:
            self.call_log.event(self.call_id, "digits", digits=event.digits, node=state.node)
        self._run(lambda: step(self.flow, state, event, self.clock()))

    def _apply(self, result: Step) -> None:
        self._state = result.state
        self._generation += 1
        self._cancel_timer()
        self._digits = ""
        self._waiting = result.state.waiting
        prompts: list[Prompt] = []
        for action in result.actions:
            if isinstance(action, NodeEntered):
                self.timeline.append(action)
                log.info("call %s: IVR %s", self.call_id, describe(action))
                if self.call_log is not None:
                    self.call_log.event(
                        self.call_id,
                        "ivr-node",
                        node=action.node,
                        type=action.kind,
                        note=action.note,
                    )
            elif isinstance(action, SetVariable):
                self.variables[action.name] = action.value
                if action.name == RECORDING_VARIABLE:
                    self._recording_variable(action.value)
            elif isinstance(action, PlayPrompt):
                prompts.append(self.prompts[action.prompt])
        final = result.final
        if final is not None:
            self._leave(final)
        elif prompts:
            self._playing = True
            self._play(self._generation, prompts, 0)
        else:
            self._prompts_done(self._generation)

    def _play(self, generation: int, prompts: list[Prompt], index: int) -> None:
        if generation != self._generation or not isinstance(self._player, PromptPlayer):
            return
        if index == len(prompts):
            self._prompts_done(generation)
            return
        on_done = partial(self._play, generation, prompts, index + 1)
        self._player.play(prompts[index], on_done=on_done)

    def _prompts_done(self, generation: int) -> None:
        if generation != self._generation or self.ended:
            return
        self._playing = False
        assert self._state is not None
        if self._state.phase is Phase.PROMPT:
            self._feed(PromptFinished())
        elif self._waiting is not None:
            self._arm(self._waiting.timeout)

    def _digit(self, digit: str) -> None:
        waiting = self._waiting
        if self.ended or waiting is None or self._state is None:
            return
        if self._state.phase is not Phase.DIGITS:
            return  # a plain play ignores digits
        if self._playing:
            # Barge-in: the caller knows the choice; the prompts stop and no PromptFinished
            # comes (the generation of their callbacks is left behind by the next step).
            self._playing = False
            if isinstance(self._player, PromptPlayer):
                self._player.play(_SILENT)
        self._digits += digit
        if len(self._digits) >= waiting.max_digits or digit == waiting.terminator:
            self._feed(DigitsEntered(digits=self._digits))
        else:
            self._arm(waiting.timeout)  # the time allowed until the next digit

    def _arm(self, timeout: float) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(timeout, self._timed_out, self._generation)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, generation: int) -> None:
        self._timer = None
        if generation != self._generation or self.ended:
            return
        # Digits typed and then silence: what was typed is the answer (the gather checks it).
        self._feed(DigitsEntered(digits=self._digits) if self._digits else InputTimedOut())

    # --- leaving the IVR ----------------------------------------------------------------------

    def _leave(self, final: FinalAction) -> None:
        self.final = final
        self._waiting = None
        self.leg.on_digit = None
        if isinstance(final, EnqueueCall):
            log.info(
                "call %s: queued to %s (priority %d)", self.call_id, final.queue, final.priority
            )
            self.release_media()
            self._player = MusicPlayer(self.leg, self.music)
            if self.on_queued is not None:
                self.on_queued(self, final)
            return
        if isinstance(final, TransferCall) and self.on_transfer is not None:
            log.info("call %s: transfer to %s", self.call_id, final.target)
            self.release_media()
            self._finish_recording()
            self.on_transfer(self, final)
            return
        if isinstance(final, StartVoicemail) and self.on_voicemail is not None:
            log.info("call %s: voicemail box %s", self.call_id, final.box)
            self.release_media()
            self._finish_recording()  # the message is a recording of its own
            self.on_voicemail(self, final)
            return
        if not isinstance(final, HangUpCall):
            log.error("call %s: no service for %s: hanging up", self.call_id, describe(final))
        if self.call_log is not None:
            self.call_log.ended(
                self.call_id,
                by="system",
                disposition="ivr" if isinstance(final, HangUpCall) else "failed",
            )
        self._hang_up()

    def _hang_up(self) -> None:
        # Not from inside the media tick or the datagram callback that got us here.
        if self._hangup is None and not self.ended:
            self._hangup = asyncio.get_running_loop().call_soon(self._send_bye)

    def _send_bye(self) -> None:
        self._hangup = None
        if self.call is not None and not self.ended:
            self.calls.hang_up(self.call.dialog_id)

    def _call_ended(self) -> None:
        if not self.ended and self.final is None:
            log.info("call %s: the caller left the IVR at %s", self.call_id, self._node)
            if self.call_log is not None:
                self.call_log.event(self.call_id, "left-ivr", node=self._node)
                self.call_log.ended(self.call_id, by="caller", disposition="ivr")
        self._close()

    def _close(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._generation += 1
        self._cancel_timer()
        if self._hangup is not None:
            self._hangup.cancel()
            self._hangup = None
        if self.leg.on_digit == self._digit:
            self.leg.on_digit = None
        self.release_media()
        self._finish_recording()
        if self.on_finished is not None:
            self.on_finished(self)

    def __repr__(self) -> str:
        return f"<IvrSession {self.call_id} {self.flow.name} at {self._node}>"


class IvrApplication:
    """The IVR as the router sees it (`take_call`) and as `serve` runs it (a Service).

    `take_call(pending, "")` runs `default_flow`, `take_call(pending, "sales")` the flow
    `sales`; an unknown flow is answered 404.
    """

    def __init__(
        self,
        calls: Calls,
        flows: FlowRegistry,
        library: PromptLibrary,
        *,
        default_flow: str = "default",
        clock: Clock = utc_now,
        music: Prompt | None = None,
        hold_music: Path | None = None,
        on_queued: QueueHook | None = None,
        on_voicemail: VoicemailHook | None = None,
        on_transfer: TransferHook | None = None,
        call_log: CallLog | None = None,
        recordings: RecordingService | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        # With `recordings`, calls are recorded from the IVR's answer (CALLCENTER_RECORD_IVR);
        # a flow's pauses (`set: {recording: paused}`) are audited with the actor 'ivr'.
        self.recordings = recordings
        self.audit = audit
        self._audits: set[asyncio.Task[None]] = set()
        self.calls = calls
        self.on_voicemail = on_voicemail
        self.on_transfer = on_transfer
        self.call_log = call_log
        self.hold_music = hold_music
        self.flows = flows
        self.library = library
        self.default_flow = default_flow
        self.clock = clock
        self.music = music
        self.on_queued = on_queued
        self.sessions: set[IvrSession] = set()
        self._prompts: dict[str, tuple[Flow, dict[str, Prompt]]] = {}

    async def start(self) -> None:
        result = self.flows.reload()
        for problem in result.problems:
            log.warning("IVR: %s", problem)
        if self.music is None:
            self.music = await load_music(self.hold_music, cache=self.library.cache)
        # Render every text prompt now, so that the first caller does not wait for espeak-ng;
        # a flow whose prompts fail is logged, and its calls fail (500) until it is fixed.
        for name in self.flows.names():
            try:
                await self._flow_prompts(self.flows.get(name))
            except Exception as exc:
                log.error("IVR flow %s: prompts not ready: %s", name, exc)

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.close()
        # The audit entries of the last pauses are written, not dropped.
        await asyncio.gather(*self._audits, return_exceptions=True)

    def _recording_paused(self, session: IvrSession, paused: bool) -> None:
        if self.audit is None:
            return
        action = RECORDING_PAUSE if paused else RECORDING_RESUME
        task = asyncio.get_running_loop().create_task(
            self._audit(action, session.call_id, session.flow.name)
        )
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    async def _audit(self, action: str, call_id: str, flow: str) -> None:
        assert self.audit is not None
        try:
            await self.audit.append("ivr", action, f"call:{call_id}", {"flow": flow})
        except Exception:
            log.exception("call %s: the audit log refused the IVR's %s", call_id, action)

    def listening(self) -> str:
        names = ", ".join(self.flows.names()) or "none"
        return f"IVR: flows {names} (default {self.default_flow})"

    async def _flow_prompts(self, flow: Flow) -> dict[str, Prompt]:
        cached = self._prompts.get(flow.name)
        if cached is not None and cached[0] is flow:
            return cached[1]
        prompts = await self.library.load_flow(flow)
        self._prompts[flow.name] = (flow, prompts)
        return prompts

    async def take_call(self, pending: PendingCall, argument: str) -> None:
        name = argument or self.default_flow
        try:
            flow = self.flows.get(name)
        except KeyError:
            log.info("call %s: no IVR flow %r", pending.request.call_id, name[:64])
            self.calls.reject(pending, 404, "No such IVR flow")
            return
        prompts = await self._flow_prompts(flow)
        assert self.music is not None, "IvrApplication.start() was not awaited"
        session = IvrSession(
            flow,
            prompts,
            calls=self.calls,
            pending=pending,
            music=self.music,
            clock=self.clock,
            on_queued=self.on_queued,
            on_voicemail=self.on_voicemail,
            on_transfer=self.on_transfer,
            on_finished=self.sessions.discard,
            call_log=self.call_log,
            recordings=self.recordings,
            on_recording_paused=self._recording_paused,
        )
        self.sessions.add(session)
        session.begin()
