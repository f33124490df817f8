"""The agent's desk over REST (docs/agent-api.md): state, the call's controls, wrap-up, history.

Thin: every route checks the role, reads a bounded body and calls `AgentDesk`; the desk's
`DeskError` becomes the HTTP status it names. An agent acts only on itself and its own calls.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from ...services.accounts import Principal
from ...services.acd.control import TransferTarget
from ...services.desk.views import (
    AgentView,
    CallSummary,
    CustomerCard,
    PartyView,
    TransferTargets,
)
from ..deps import require_roles
from .desk import DeskDep, desk_errors

router = APIRouter(prefix="/api", tags=["agent"])

Agent = Annotated[Principal, require_roles("agent")]
CallId = Annotated[str, Path(min_length=1, max_length=255)]
PartyId = Annotated[int, Path(ge=1, le=2**31)]


class StateChange(BaseModel):
    state: Literal["available", "away", "logged-out"]
    reason: str | None = Field(default=None, max_length=64)


class OnOff(BaseModel):
    on: bool


class Digits(BaseModel):
    digits: str = Field(min_length=1, max_length=32, pattern=r"^[0-9*#A-D]+$")


class Target(BaseModel):
    kind: Literal["agent", "queue", "number"]
    value: str = Field(min_length=1, max_length=64)


class TransferRequest(BaseModel):
    target: Target


class PartyTarget(BaseModel):
    kind: Literal["agent", "queue", "number", "phone"]
    value: str = Field(min_length=1, max_length=64)


class AddParty(BaseModel):
    target: PartyTarget
    join: bool = True  # straight into the conference; false: talk privately first


class PartyAdded(BaseModel):
    party: PartyView | None  # None: a consultation (join it, complete or cancel it)


class WrapUp(BaseModel):
    disposition: str = Field(min_length=1, max_length=32)
    notes: str = Field(default="", max_length=4000)
    customer_id: int | None = Field(default=None, ge=1)


class ChooseCustomer(BaseModel):
    customer_id: int = Field(ge=1)


@router.get("/agent")
async def get_agent(user: Agent, desk: DeskDep) -> AgentView:
    """The agent's state, its call or offer now, its queues, away reasons and dispositions."""
    with desk_errors():
        return desk.view(user.username)


@router.put("/agent/state")
async def put_state(body: StateChange, user: Agent, desk: DeskDep) -> AgentView:
    """Available, away (with a reason) or logged out of the queues."""
    with desk_errors():
        return desk.set_state(user.username, body.state, body.reason)


@router.post("/calls/{call_id}/answer", status_code=status.HTTP_204_NO_CONTENT)
async def answer(call_id: CallId, user: Agent, desk: DeskDep) -> None:
    """Take the call ringing on the page; its audio joins the page's socket."""
    with desk_errors():
        desk.answer(user.username, call_id)


@router.post("/calls/{call_id}/reject", status_code=status.HTTP_204_NO_CONTENT)
async def reject(call_id: CallId, user: Agent, desk: DeskDep) -> None:
    """Refuse the offer (on every device of the agent); it goes to the next agent."""
    with desk_errors():
        desk.reject(user.username, call_id)


@router.post("/calls/{call_id}/hangup", status_code=status.HTTP_204_NO_CONTENT)
async def hang_up(call_id: CallId, user: Agent, desk: DeskDep) -> None:
    with desk_errors():
        desk.hang_up(user.username, call_id)


@router.put("/calls/{call_id}/hold", status_code=status.HTTP_204_NO_CONTENT)
async def hold(call_id: CallId, body: OnOff, user: Agent, desk: DeskDep) -> None:
    """On hold the caller hears music and nobody hears the caller."""
    with desk_errors():
        desk.hold(user.username, call_id, body.on)


@router.put("/calls/{call_id}/mute", status_code=status.HTTP_204_NO_CONTENT)
async def mute(call_id: CallId, body: OnOff, user: Agent, desk: DeskDep) -> None:
    """The server stops mixing the agent's audio (the page shows `call.muted`)."""
    with desk_errors():
        desk.mute(user.username, call_id, body.on)


class RecordingPause(BaseModel):
    paused: bool


@router.put("/calls/{call_id}/recording", status_code=status.HTTP_204_NO_CONTENT)
async def pause_recording(
    call_id: CallId, body: RecordingPause, user: Agent, desk: DeskDep
) -> None:
    """Pause the call's recording (silence is written: for card numbers) or resume it; a
    pause ends by itself after the maximum (3 minutes)."""
    with desk_errors():
        await desk.pause_recording(user.username, call_id, body.paused)


@router.post("/calls/{call_id}/dtmf", status_code=status.HTTP_204_NO_CONTENT)
async def dtmf(call_id: CallId, body: Digits, user: Agent, desk: DeskDep) -> None:
    """Digits to the caller as RFC 4733 events."""
    with desk_errors():
        desk.send_digits(user.username, call_id, body.digits)


@router.post("/calls/{call_id}/transfer", status_code=status.HTTP_204_NO_CONTENT)
async def transfer(call_id: CallId, body: TransferRequest, user: Agent, desk: DeskDep) -> None:
    """Blind transfer to an agent, a queue or a number: the agent leaves at once."""
    with desk_errors():
        desk.transfer(user.username, call_id, _target(body.target))


@router.post("/calls/{call_id}/consult", status_code=status.HTTP_204_NO_CONTENT)
async def consult(call_id: CallId, body: TransferRequest, user: Agent, desk: DeskDep) -> None:
    """Warm transfer: the caller hears music while the target rings; answers when the target
    answered (409 when it did not)."""
    with desk_errors():
        await desk.consult(user.username, call_id, _target(body.target))


@router.post("/calls/{call_id}/consult/complete", status_code=status.HTTP_204_NO_CONTENT)
async def complete_consult(call_id: CallId, user: Agent, desk: DeskDep) -> None:
    with desk_errors():
        desk.complete_consult(user.username, call_id)


@router.post("/calls/{call_id}/consult/cancel", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_consult(call_id: CallId, user: Agent, desk: DeskDep) -> None:
    with desk_errors():
        desk.cancel_consult(user.username, call_id)


@router.post("/calls/{call_id}/parties")
async def add_party(call_id: CallId, body: AddParty, user: Agent, desk: DeskDep) -> PartyAdded:
    """Ring someone for the call while the caller hears music; answers once they answer."""
    target = TransferTarget(kind=body.target.kind, value=body.target.value)
    with desk_errors():
        party = await desk.add_party(user.username, call_id, target, join=body.join)
    return PartyAdded(party=party)


@router.post("/calls/{call_id}/consult/join")
async def join_consult(call_id: CallId, user: Agent, desk: DeskDep) -> PartyView:
    """The consulted party joins the caller and the agent: a conference."""
    with desk_errors():
        return desk.join(user.username, call_id)


@router.delete("/calls/{call_id}/parties/{party_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_party(call_id: CallId, party_id: PartyId, user: Agent, desk: DeskDep) -> None:
    with desk_errors():
        desk.remove_party(user.username, call_id, party_id)


@router.put("/calls/{call_id}/parties/{party_id}/mute", status_code=status.HTTP_204_NO_CONTENT)
async def mute_party(
    call_id: CallId, party_id: PartyId, body: OnOff, user: Agent, desk: DeskDep
) -> None:
    with desk_errors():
        desk.mute_party(user.username, call_id, party_id, body.on)


@router.post("/calls/{call_id}/wrap-up", status_code=status.HTTP_204_NO_CONTENT)
async def wrap_up(call_id: CallId, body: WrapUp, user: Agent, desk: DeskDep) -> None:
    """Disposition and notes on the call record and the customer; wrap-up ends."""
    with desk_errors():
        await desk.wrap_up(
            user.username,
            call_id,
            disposition=body.disposition,
            notes=body.notes,
            customer_id=body.customer_id,
        )


@router.post("/calls/{call_id}/customer")
async def choose_customer(
    call_id: CallId, body: ChooseCustomer, user: Agent, desk: DeskDep
) -> CustomerCard:
    """This call is about that customer (one of several matches)."""
    with desk_errors():
        return await desk.choose_customer(user.username, call_id, body.customer_id)


@router.get("/calls/history")
async def history(
    user: Agent, desk: DeskDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[CallSummary]:
    """The agent's own calls, newest first."""
    with desk_errors():
        return await desk.history(user.username, limit)


@router.get("/transfer-targets")
async def transfer_targets(user: Agent, desk: DeskDep) -> TransferTargets:
    return desk.transfer_targets()


def _target(target: Target) -> TransferTarget:
    return TransferTarget(kind=target.kind, value=target.value)
