"""What the supervisor dashboard is shown, and the typed events of its WebSocket
(docs/supervisor-api.md).

Owns the shapes: frozen pydantic models, so the REST answers and the WebSocket events are one
vocabulary, validated and documented in one place. Must not know HTTP or the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from callcenter.services.desk.views import AudioFormat, Caller

MonitorMode = Literal["listen", "whisper", "barge"]
Via = Literal["page", "phone", "number"]
LiveState = Literal["waiting", "ringing", "talking", "conference"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class LiveParty(_Frozen):
    """Someone on a live call besides the caller: the owner (the agent whose page controls
    it, id 0), a conference party, or a supervisor monitoring."""

    id: int
    label: str  # 'agent:amy', 'number:+4420…', 'phone:desk7', 'supervisor:sam'
    name: str
    role: Literal["owner", "party", "monitor"]
    mode: Literal["full", "muted", "held", "listen", "whisper", "barge"]
    muted: bool
    whisper_to: str | None = None  # a whisper's listener (a label), when it is not the owner


class LiveCall(_Frozen):
    call_id: str
    caller: Caller
    queue: str
    state: LiveState
    agent: str | None  # the owner: whose page controls the call
    agent_name: str | None
    since: datetime  # answered (talking, conference) or queued (waiting, ringing)
    held: bool
    recording: bool
    reaching: str | None  # who is being rung for it while the caller hears music
    parties: list[LiveParty]
    monitors: list[str]  # supervisors monitoring it (usernames)


class AgentRow(_Frozen):
    username: str
    display_name: str
    state: str
    reason: str | None
    call_id: str | None
    queues: list[str]
    since: datetime  # when this dashboard first saw the agent in this state


class QueueRow(_Frozen):
    queue: str
    waiting: int
    longest_wait_seconds: float
    agents_available: int
    answered: int
    abandoned: int
    service_level: float | None  # percent answered in time, None before any call
    service_level_seconds: float  # the threshold: answered within this many seconds


class Monitoring(_Frozen):
    """The call a supervisor is monitoring (at most one)."""

    call_id: str
    party_id: int
    mode: MonitorMode
    via: Via
    number: str | None
    whisper_to: str | None  # the agent whispered to (None: the call's owner)
    since: datetime


class Supervisor(_Frozen):
    username: str
    display_name: str


class LiveView(_Frozen):
    """The whole dashboard at once (GET /api/supervisor/live and the socket's hello)."""

    calls: list[LiveCall]
    agents: list[AgentRow]
    queues: list[QueueRow]
    monitoring: Monitoring | None


# --- WebSocket events (server -> page) --------------------------------------------------------


class SupervisorHello(_Frozen):
    type: Literal["supervisor.hello"] = "supervisor.hello"
    supervisor: Supervisor
    live: LiveView
    audio: AudioFormat = AudioFormat()


class CallsChanged(_Frozen):
    type: Literal["supervisor.calls"] = "supervisor.calls"
    calls: list[LiveCall]


class AgentsChanged(_Frozen):
    type: Literal["supervisor.agents"] = "supervisor.agents"
    agents: list[AgentRow]


class QueueStatsChanged(_Frozen):
    type: Literal["queue.stats"] = "queue.stats"
    queues: list[QueueRow]


MonitorChange = Literal["joined", "switched", "left", "call-ended", "hung-up", "page-closed"]


class MonitorChanged(_Frozen):
    """The supervisor's monitoring began, changed mode or ended (`monitoring` None), and why."""

    type: Literal["monitor.changed"] = "monitor.changed"
    change: MonitorChange
    monitoring: Monitoring | None


SupervisorEvent = (
    SupervisorHello | CallsChanged | AgentsChanged | QueueStatsChanged | MonitorChanged
)
