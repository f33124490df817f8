"""What an agent's page is shown, and the typed events of its WebSocket (docs/agent-api.md).

Owns the shapes: frozen pydantic models, so the REST answers and the WebSocket events are
one vocabulary, validated and documented in one place. Must not know HTTP or the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Caller(_Frozen):
    number: str  # E.164, or "" when withheld or unreadable
    name: str
    withheld: bool


class Note(_Frozen):
    at: datetime
    author: str | None
    kind: str
    text: str


class CallSummary(_Frozen):
    call_id: str
    caller: str
    caller_name: str
    queue: str | None
    agent: str | None
    arrived_at: datetime
    talk_seconds: float | None
    disposition: str
    outcome: str | None
    notes: str


class CustomerCard(_Frozen):
    id: int
    name: str
    company: str
    tier: str
    email: str | None
    phones: list[str]
    notes: list[Note]
    recent_calls: list[CallSummary]


CallState = Literal["ringing", "talking", "held", "consulting", "wrap-up"]


class PartyView(_Frozen):
    """Someone else on the call: a conference party, or a supervisor whispering or barging
    in (a supervisor only listening is not shown)."""

    id: int
    label: str  # 'agent:bob', 'number:+4420…', 'phone:desk7', 'supervisor:sam'
    name: str  # for people: an agent's display name, else the number or phone
    role: Literal["party", "monitor"]
    mode: Literal["full", "muted", "whisper", "barge"]


class CallView(_Frozen):
    call_id: str
    state: CallState
    caller: Caller
    queue: str | None
    customers: list[CustomerCard]
    customer_id: int | None
    muted: bool = False
    held: bool = False
    on: Literal["page", "phone"] | None = None
    recording_paused: bool | None = None  # None: the call is not recorded
    since: datetime  # when it arrived; once answered, when it was answered (talk time)
    owner: bool = True  # this agent controls the call (False: a party in someone's conference)
    parties: list[PartyView] = []
    reaching: str | None = None  # who is being rung (a label) while the caller hears music


class AgentView(_Frozen):
    username: str
    display_name: str
    state: str
    reason: str | None
    call: CallView | None
    queues: list[str]
    away_reasons: list[str]
    dispositions: list[str]


class QueueStat(_Frozen):
    queue: str
    waiting: int
    longest_wait_seconds: float
    agents_available: int


class TransferAgent(_Frozen):
    username: str
    display_name: str
    state: str


class TransferTargets(_Frozen):
    agents: list[TransferAgent]
    queues: list[str]


# --- WebSocket events (server -> page) --------------------------------------------------------


class AudioFormat(_Frozen):
    codec: Literal["pcmu"] = "pcmu"
    frame_ms: int = 20
    rate: int = 8000


class Hello(_Frozen):
    type: Literal["hello"] = "hello"
    agent: AgentView
    audio: AudioFormat = AudioFormat()


class AgentStateChanged(_Frozen):
    type: Literal["agent.state"] = "agent.state"
    state: str
    reason: str | None
    call_id: str | None


class CallOffered(_Frozen):
    type: Literal["call.offered"] = "call.offered"
    call: CallView
    ring_timeout_seconds: float


OfferEndReason = Literal["answered-elsewhere", "caller-left", "no-answer", "rejected"]


class OfferWithdrawn(_Frozen):
    type: Literal["call.offer_withdrawn"] = "call.offer_withdrawn"
    call_id: str
    reason: str


class CallAnswered(_Frozen):
    type: Literal["call.answered"] = "call.answered"
    call: CallView


class CallHeld(_Frozen):
    type: Literal["call.held"] = "call.held"
    call_id: str
    held: bool


class CallMuted(_Frozen):
    type: Literal["call.muted"] = "call.muted"
    call_id: str
    muted: bool


class ConsultChanged(_Frozen):
    type: Literal["call.consult"] = "call.consult"
    call_id: str
    state: Literal["ringing", "talking", "failed", "cancelled", "completed", "joined"]
    target: str


class PartiesChanged(_Frozen):
    """The call's other parties now (someone joined, left, was muted, or took over)."""

    type: Literal["call.parties"] = "call.parties"
    call_id: str
    owner: bool
    parties: list[PartyView]
    reaching: str | None


class RecordingChanged(_Frozen):
    type: Literal["call.recording"] = "call.recording"
    call_id: str
    paused: bool


class CallTransferred(_Frozen):
    type: Literal["call.transferred"] = "call.transferred"
    call_id: str
    kind: Literal["blind", "warm"]
    target: str


class CallEnded(_Frozen):
    type: Literal["call.ended"] = "call.ended"
    call_id: str
    by: str
    wrap_up_seconds: float | None


class CustomerMatched(_Frozen):
    type: Literal["customer.matched"] = "customer.matched"
    call_id: str
    customer: CustomerCard


class QueueStats(_Frozen):
    type: Literal["queue.stats"] = "queue.stats"
    queues: list[QueueStat]


class AudioStatus(_Frozen):
    type: Literal["audio.status"] = "audio.status"
    attached: bool
    frames_in: int
    frames_out: int
    lost: int
    late: int


DeskEvent = (
    Hello
    | AgentStateChanged
    | CallOffered
    | OfferWithdrawn
    | CallAnswered
    | CallHeld
    | CallMuted
    | ConsultChanged
    | PartiesChanged
    | CallTransferred
    | RecordingChanged
    | CallEnded
    | CustomerMatched
    | QueueStats
    | AudioStatus
)
