"""The supervisor's desk: the live dashboard and monitoring (listen, whisper, barge).

Owns one WebSocket session per supervisor (a newer one takes over, like the agent desk), the
snapshots the dashboard shows (live calls and conferences with their parties, agents' states,
queue statistics with the service level), a one-second owned tick that pushes each part when
it changed, and monitoring: a supervisor joins a live call from the page (its `BrowserPhone`,
answered at once), their registered phone or an outside number (the engine calls them),
listens, whispers (to the call's owner or a named agent) or barges in, switches mode in place
(the same party: no re-dial) and leaves. At most one monitored call per supervisor.

Every monitoring action is on the audit log before it happens (no audit, no monitoring):
subject `call:<call-id>`, detail `{mode, via, number?, whisper_to?}`, a switch as the new
mode's action with `from`. Leaving is never refused (to stop listening must not depend on the
database): its entry is written first when it can be. An end the supervisor did not ask for
(the call ended, their phone hung up, their page went away) is audited as `monitor.leave`
with `why`. Must not know HTTP or WebSockets: a session is two callables and an audio sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from callcenter.engine.bridge import Target
from callcenter.engine.connection import Callee, CallStateError, Connection, Party, PartyChange
from callcenter.engine.media import RtpLeg
from callcenter.engine.outbound import CallFailed
from callcenter.services.acd.control import ControlError
from callcenter.services.acd.runtime import DIALABLE, Waiter
from callcenter.services.audit import (
    MONITOR_BARGE,
    MONITOR_LEAVE,
    MONITOR_LISTEN,
    MONITOR_WHISPER,
    AuditLog,
)
from callcenter.services.desk import AgentDesk
from callcenter.services.desk.service import TAKEN_OVER
from callcenter.sip import SipUri

from .picture import LABEL_PREFIX, Picture
from .views import (
    AgentRow,
    AgentsChanged,
    CallsChanged,
    LiveCall,
    LiveView,
    MonitorChange,
    MonitorChanged,
    Monitoring,
    MonitorMode,
    QueueRow,
    QueueStatsChanged,
    Supervisor,
    SupervisorEvent,
    SupervisorHello,
    Via,
)

log = logging.getLogger(__name__)

TICK_INTERVAL: Final = 1.0
MONITOR_RING_SECONDS: Final = 30.0
"""How long a supervisor's phone (or number) rings before monitoring is given up."""
ACTIONS: Final[Mapping[str, str]] = {
    "listen": MONITOR_LISTEN,
    "whisper": MONITOR_WHISPER,
    "barge": MONITOR_BARGE,
}
# A supervisor on a phone or a number switches with its keypad, as on a PBX: 4 listen,
# 5 whisper (to the call's owner), 6 barge. Same switch, same audit, as from the page.
DIGIT_MODES: Final[Mapping[str, str]] = {"4": "listen", "5": "whisper", "6": "barge"}


class SupervisorError(ControlError):
    """A request refused: `status` is the HTTP status that says why."""


@dataclass(eq=False)
class SupervisorSession:
    supervisor: str
    deliver: Callable[[SupervisorEvent], None]
    close: Callable[[int], None]
    send_audio: Callable[[bytes], None]
    closed: bool = False


@dataclass(eq=False)
class _Monitor:
    """A supervisor's monitoring: joining (no party yet) or joined."""

    supervisor: str
    call_id: str
    waiter: Waiter
    connection: Connection
    mode: MonitorMode
    via: Via
    number: str | None
    whisper_to: str | None
    since: datetime
    party: Party | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> Monitoring:
        return Monitoring(
            call_id=self.call_id,
            party_id=self.party.id if self.party is not None else 0,
            mode=self.mode,
            via=self.via,
            number=self.number,
            whisper_to=self.whisper_to,
            since=self.since,
        )

    def detail(self, **more: object) -> dict[str, object]:
        detail: dict[str, object] = {"mode": self.mode, "via": self.via}
        if self.number is not None:
            detail["number"] = self.number
        if self.whisper_to is not None and self.mode == "whisper":
            detail["whisper_to"] = self.whisper_to
        detail.update(more)
        return detail


class SupervisorDesk:
    """The supervisor dashboard's service, over the agent desk (its ACD, call control, page
    phones and display names)."""

    def __init__(
        self,
        desk: AgentDesk,
        *,
        audit: AuditLog | None,
        interval: float = TICK_INTERVAL,
        ring_timeout: float = MONITOR_RING_SECONDS,
    ) -> None:
        self.desk = desk
        self.acd = desk.acd
        self.control = desk.control
        self.phones = desk.phones
        self.audit = audit
        self.interval = interval
        self.ring_timeout = ring_timeout
        self._sessions: dict[str, SupervisorSession] = {}
        self._monitors: dict[str, _Monitor] = {}  # by supervisor
        self._watched: weakref.WeakSet[Connection] = weakref.WeakSet()
        self.picture = Picture(self.acd, self._name)
        self._last_calls: list[LiveCall] | None = None
        self._last_agents: list[AgentRow] | None = None
        self._last_queues: list[QueueRow] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    # --- service ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="supervisor-desk")

    async def stop(self) -> None:
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker = None
        for session in list(self._sessions.values()):
            session.close(1001)

    def listening(self) -> str:
        return (
            f"supervisor desk: {len(self._sessions)} page(s) connected, "
            f"{sum(m.party is not None for m in self._monitors.values())} monitoring"
        )

    # --- sessions (one WebSocket per supervisor) ---------------------------------------------

    def connect(
        self,
        supervisor: str,
        *,
        deliver: Callable[[SupervisorEvent], None],
        close: Callable[[int], None],
        send_audio: Callable[[bytes], None],
    ) -> SupervisorSession:
        """The dashboard opened its socket: `supervisor.hello` with the whole picture, then
        every change; a previous socket of the same supervisor is closed (code 4409)."""
        session = SupervisorSession(
            supervisor=supervisor, deliver=deliver, close=close, send_audio=send_audio
        )
        old = self._sessions.get(supervisor)
        self._sessions[supervisor] = session
        phone = self.phones.phone(supervisor)
        phone.attach(send_audio)
        if old is not None:
            old.closed = True
            phone.detach(old.send_audio)
            old.close(TAKEN_OVER)
        live = self.live(supervisor)
        if len(self._sessions) == 1:  # the only dashboard: the next push is what changed
            self._last_calls, self._last_agents = live.calls, live.agents
            self._last_queues = live.queues
        hello = SupervisorHello(
            supervisor=Supervisor(username=supervisor, display_name=self._name(supervisor)),
            live=live,
        )
        deliver(hello)
        return session

    def disconnect(self, session: SupervisorSession) -> None:
        if session.closed:
            return
        session.closed = True
        self.phones.phone(session.supervisor).detach(session.send_audio)
        if self._sessions.get(session.supervisor) is session:
            del self._sessions[session.supervisor]

    def audio_in(self, session: SupervisorSession, data: bytes) -> None:
        """One binary frame from the page's microphone (bounded and parsed by the leg)."""
        if not session.closed:
            self.phones.phone(session.supervisor).leg.receive(data)

    def _publish(self, supervisor: str, event: SupervisorEvent) -> None:
        session = self._sessions.get(supervisor)
        if session is not None and not session.closed:
            try:
                session.deliver(event)
            except Exception:
                log.exception("supervisor desk: event to %s failed", supervisor)

    def _broadcast(self, event: SupervisorEvent) -> None:
        for supervisor in list(self._sessions):
            self._publish(supervisor, event)

    # --- the picture ---------------------------------------------------------------------------

    def live(self, supervisor: str | None = None) -> LiveView:
        monitor = self._monitors.get(supervisor) if supervisor is not None else None
        return LiveView(
            calls=self.calls(),
            agents=self.agents(),
            queues=self.queues(),
            monitoring=monitor.view()
            if monitor is not None and monitor.party is not None
            else None,
        )

    def monitoring(self, supervisor: str) -> Monitoring | None:
        monitor = self._monitors.get(supervisor)
        return monitor.view() if monitor is not None and monitor.party is not None else None

    def calls(self) -> list[LiveCall]:
        return self.picture.calls()

    def agents(self) -> list[AgentRow]:
        return self.picture.agents()

    def queues(self) -> list[QueueRow]:
        return self.picture.queues()

    def _name(self, username: str) -> str:
        return self.desk.display_names.get(username, username)

    def _push(self) -> None:
        """Each part of the picture that changed since the last push, to every dashboard."""
        agents = self.agents()  # (also when nobody looks: it keeps each agent's `since`)
        if not self._sessions:
            self._last_calls = self._last_agents = self._last_queues = None
            return
        calls, queues = self.calls(), self.queues()
        if calls != self._last_calls:
            self._last_calls = calls
            self._broadcast(CallsChanged(calls=calls))
        if agents != self._last_agents:
            self._last_agents = agents
            self._broadcast(AgentsChanged(agents=agents))
        if queues != self._last_queues:
            self._last_queues = queues
            self._broadcast(QueueStatsChanged(queues=queues))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self._pages_gone()
                self._push()
            except Exception:
                log.exception("supervisor desk tick failed")

    # --- monitoring ---------------------------------------------------------------------------

    async def monitor(
        self,
        supervisor: str,
        call_id: str,
        mode: str,
        via: str,
        *,
        number: str | None = None,
        whisper_to: str | None = None,
    ) -> Monitoring:
        """Join a live call in `mode` from the page, the supervisor's phone or a number.
        Returns once joined (a phone or number: once it answered)."""
        checked_mode, checked_via = _mode(mode, whisper_to), _via(via)
        if supervisor in self._monitors:
            raise SupervisorError(409, "you are already monitoring a call: leave it first")
        waiter, connection = self._live_call(call_id)
        whisper_callee = self._whisper_target(waiter, connection, whisper_to)
        targets, caller_id = self._targets(supervisor, checked_via, number)
        monitor = _Monitor(
            supervisor=supervisor,
            call_id=call_id,
            waiter=waiter,
            connection=connection,
            mode=checked_mode,
            via=checked_via,
            number=number if checked_via == "number" else None,
            whisper_to=whisper_to,
            since=_now(),
        )
        self._monitors[supervisor] = monitor  # held from here: a second request is refused
        joined = audited = False
        try:
            await self._audit(supervisor, ACTIONS[checked_mode], call_id, monitor.detail())
            audited = True
            if connection.ended or connection.detached:
                raise SupervisorError(409, "the call has ended")
            self._watch(connection)
            caller = waiter.caller.e164 or "a withheld number"
            party = await self.acd.bridges.monitor(
                connection,
                targets,
                label=f"{LABEL_PREFIX}{supervisor}",
                mode=checked_mode,
                caller_id=caller_id,
                caller_name=f"Monitor {caller}",
                ring_timeout=self.ring_timeout,
                whisper_to=whisper_callee,
            )
            joined = True
        except CallFailed as exc:
            self._failed(monitor, f"not answered ({exc.status})")
            where = "your page" if checked_via == "page" else f"your {checked_via}"
            raise SupervisorError(409, f"{where} did not take the call ({exc.status})") from exc
        except CallStateError as exc:
            self._failed(monitor, "the call ended")
            raise SupervisorError(409, "the call has ended") from exc
        except BaseException:
            if audited:
                self._failed(monitor, "failed")
            raise
        finally:
            if not joined and self._monitors.get(supervisor) is monitor:
                del self._monitors[supervisor]
        monitor.party = party
        monitor.since = _now()
        leg = party.callee.leg
        if isinstance(leg, RtpLeg):  # a phone or a number (a page has its buttons)
            leg.on_digit = lambda digit: self._keypad(supervisor, monitor, digit)
        self._note(monitor, "monitor-joined")
        self._publish(supervisor, MonitorChanged(change="joined", monitoring=monitor.view()))
        self._changed(waiter)
        return monitor.view()

    async def switch(
        self, supervisor: str, mode: str, *, whisper_to: str | None = None
    ) -> Monitoring:
        """Listen, whisper or barge on the call being monitored, in place (no re-dial)."""
        checked = _mode(mode, whisper_to)
        monitor = self._joined(supervisor)
        async with monitor.lock:
            monitor = self._joined(supervisor)
            party = monitor.party
            assert party is not None
            if checked == monitor.mode and whisper_to == monitor.whisper_to:
                return monitor.view()  # nothing changes: nothing to audit
            callee = self._whisper_target(monitor.waiter, monitor.connection, whisper_to)
            detail: dict[str, object] = {"mode": checked, "via": monitor.via, "from": monitor.mode}
            if monitor.number is not None:
                detail["number"] = monitor.number
            if whisper_to is not None:
                detail["whisper_to"] = whisper_to
            await self._audit(supervisor, ACTIONS[checked], monitor.call_id, detail)
            if self._monitors.get(supervisor) is not monitor or party.left:
                raise SupervisorError(409, "your monitoring ended meanwhile")
            try:
                monitor.connection.set_monitor(party, checked, whisper_to=callee)
            except CallStateError as exc:
                raise SupervisorError(409, str(exc)) from exc
            monitor.mode = checked
            monitor.whisper_to = whisper_to
        self._note(monitor, "monitor-switched")
        self._publish(supervisor, MonitorChanged(change="switched", monitoring=monitor.view()))
        self._changed(monitor.waiter)
        return monitor.view()

    def _keypad(self, supervisor: str, monitor: _Monitor, digit: str) -> None:
        mode = DIGIT_MODES.get(digit)
        if mode is not None and self._monitors.get(supervisor) is monitor:
            self._spawn(self._switch_by_keypad(supervisor, mode))

    async def _switch_by_keypad(self, supervisor: str, mode: str) -> None:
        try:
            await self.switch(supervisor, mode)
        except SupervisorError as exc:
            log.warning("monitoring by %s: keypad switch to %s refused: %s", supervisor, mode, exc)

    async def leave(self, supervisor: str) -> None:
        """Stop monitoring: the supervisor's call (page, phone or number) is hung up."""
        monitor = self._joined(supervisor)
        async with monitor.lock:
            if self._monitors.get(supervisor) is not monitor:
                return  # ended meanwhile (and audited as such)
            try:
                await self._audit(supervisor, MONITOR_LEAVE, monitor.call_id, monitor.detail())
            except SupervisorError:
                # Never refused: the entry is missing, the listening stops all the same.
                log.error(
                    "monitoring of %s by %s ends without its audit entry",
                    monitor.call_id,
                    supervisor,
                )
            self._end(monitor, "left")

    def _end(self, monitor: _Monitor, change: MonitorChange) -> None:
        """The monitoring is over: forgotten, its party hung up, the page and agents told."""
        if self._monitors.get(monitor.supervisor) is monitor:
            del self._monitors[monitor.supervisor]
        party = monitor.party
        if party is not None and not party.left:
            # (CallStateError: the call ended meanwhile and its end hung the party up.)
            with contextlib.suppress(CallStateError):
                monitor.connection.remove_party(party)
        self._note(monitor, "monitor-left", why=change)
        self._publish(monitor.supervisor, MonitorChanged(change=change, monitoring=None))
        self._changed(monitor.waiter)

    def _note(self, monitor: _Monitor, kind: str, **more: object) -> None:
        """On the call record's timeline too (QA reads when a supervisor was on the call)."""
        try:
            self.acd._event(
                monitor.call_id,
                kind,
                supervisor=monitor.supervisor,
                mode=monitor.mode,
                via=monitor.via,
                **more,
            )
        except Exception:  # (called from the engine's callbacks too: never raise into them)
            log.exception("supervisor desk: the call record of %s failed", monitor.call_id)

    def _joined(self, supervisor: str) -> _Monitor:
        monitor = self._monitors.get(supervisor)
        if monitor is None:
            raise SupervisorError(409, "you are not monitoring a call")
        if monitor.party is None:
            raise SupervisorError(409, "your monitoring is still being connected")
        return monitor

    def _changed(self, waiter: Waiter) -> None:
        """The agents on the call see a whisper or barge; dashboards the new picture. Also
        called from the engine's party callback: it must not raise into the call's end."""
        try:
            if not waiter.gone:
                self.desk.parties_changed(waiter)
            self._push()
        except Exception:
            log.exception("supervisor desk: telling of call %s failed", waiter.call_id)

    def _watch(self, connection: Connection) -> None:
        """Once per connection: a monitor that leaves by itself (the call ended, the phone
        hung up) ends its monitoring. Chained after whoever watched the parties before."""
        if connection in self._watched:
            return
        self._watched.add(connection)
        previous = connection.on_party

        def party_changed(party: Party, change: PartyChange) -> None:
            if previous is not None:
                previous(party, change)
            if party.role == "monitor" and change in ("left", "removed"):
                self._monitor_gone(connection, party)

        connection.on_party = party_changed

    def _monitor_gone(self, connection: Connection, party: Party) -> None:
        for monitor in list(self._monitors.values()):
            if monitor.party is party:
                why: MonitorChange = "call-ended" if connection.ended else "hung-up"
                self._spawn(
                    self._audit_quietly(
                        monitor.supervisor,
                        MONITOR_LEAVE,
                        monitor.call_id,
                        monitor.detail(why=why),
                    )
                )
                self._end(monitor, why)

    def _pages_gone(self) -> None:
        """A page that monitored and stayed away past its grace (closed, not reloaded)."""
        for monitor in list(self._monitors.values()):
            if monitor.via != "page" or monitor.party is None:
                continue
            phone = self.phones.get(monitor.supervisor)
            if phone is None or not phone.present():
                log.info("supervisor %s: the page went away; monitoring ends", monitor.supervisor)
                self._spawn(
                    self._audit_quietly(
                        monitor.supervisor,
                        MONITOR_LEAVE,
                        monitor.call_id,
                        monitor.detail(why="page-closed"),
                    )
                )
                self._end(monitor, "page-closed")

    def _failed(self, monitor: _Monitor, why: str) -> None:
        """Monitoring audited but never joined: the trail says so."""
        self._spawn(
            self._audit_quietly(
                monitor.supervisor, MONITOR_LEAVE, monitor.call_id, monitor.detail(why=why)
            )
        )

    # --- checks -------------------------------------------------------------------------------

    def _live_call(self, call_id: str) -> tuple[Waiter, Connection]:
        waiter = self.acd.waiters.get(call_id)
        if waiter is None or waiter.gone:
            raise SupervisorError(404, "no such live call")
        connection = self.acd.bridges.connection(waiter.call)
        if connection is None:
            raise SupervisorError(409, "the call is not connected to anyone yet (still queued)")
        return waiter, connection

    def _whisper_target(
        self, waiter: Waiter, connection: Connection, agent: str | None
    ) -> Callee | None:
        """The callee a whisper goes to: None for the owner, else the named agent's."""
        if agent is None:
            return None
        if waiter.agent == agent:
            return connection.callee
        party = self.control.party_of(agent, waiter.call_id)
        if party is None:
            raise SupervisorError(404, f"{agent} is not on that call")
        return party.callee

    def _targets(self, supervisor: str, via: Via, number: str | None) -> tuple[list[Target], str]:
        """What to ring for the supervisor, and the caller id it shows."""
        acd = self.acd
        if via != "number" and number is not None:
            raise SupervisorError(400, "a number goes with via 'number'")
        if via == "page":
            session = self._sessions.get(supervisor)
            phone = self.phones.get(supervisor)
            if session is None or session.closed or phone is None or not phone.present():
                raise SupervisorError(409, "your dashboard page is not connected")
            if phone.busy:
                raise SupervisorError(409, "your page is already on a call")
            return [phone], "monitor"
        if via == "phone":
            sip = acd._phone_of(supervisor)
            if sip is None:
                raise SupervisorError(409, "you have no registered phone")
            return [sip], "monitor"
        if number is None or not DIALABLE.fullmatch(number):
            raise SupervisorError(400, "a number is 1 to 15 digits, optionally after +")
        trunk = acd.trunks.outbound()
        if trunk is None or trunk.outbound is None:
            raise SupervisorError(409, "no outbound trunk is configured")
        peer = trunk.outbound
        return (
            [(SipUri(host=peer.host, port=peer.port, user=number), peer)],
            next(iter(trunk.numbers), "callcenter"),
        )

    # --- the audit log ------------------------------------------------------------------------

    async def _audit(
        self, actor: str, action: str, call_id: str, detail: Mapping[str, object]
    ) -> None:
        """On the log first: 503 when it cannot be written (and nothing is done)."""
        if self.audit is None:
            raise SupervisorError(503, "no audit log: monitoring is refused")
        try:
            await self.audit.append(actor, action, f"call:{call_id}", detail)
        except Exception as exc:
            log.exception("audit of %s on call %s by %s failed", action, call_id, actor)
            raise SupervisorError(503, "the audit log cannot be written: try again") from exc

    async def _audit_quietly(
        self, actor: str, action: str, call_id: str, detail: Mapping[str, object]
    ) -> None:
        with contextlib.suppress(SupervisorError):  # (logged)
            await self._audit(actor, action, call_id, detail)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """A task the desk owns (cancelled and awaited by stop)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _mode(mode: str, whisper_to: str | None) -> MonitorMode:
    if mode == "listen":
        checked: MonitorMode = "listen"
    elif mode == "whisper":
        checked = "whisper"
    elif mode == "barge":
        checked = "barge"
    else:
        raise SupervisorError(400, "mode is one of listen, whisper, barge")
    if whisper_to is not None and checked != "whisper":
        raise SupervisorError(400, "whisper_to goes with mode 'whisper'")
    return checked


def _via(via: str) -> Via:
    if via == "page":
        return "page"
    if via == "phone":
        return "phone"
    if via == "number":
        return "number"
    raise SupervisorError(400, "via is one of page, phone, number")


def _now() -> datetime:
    return datetime.now(UTC)
