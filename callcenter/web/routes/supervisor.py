"""The supervisor dashboard over REST and its WebSocket (docs/supervisor-api.md): the live
picture, and monitoring a live call (listen, whisper, barge, switch, leave).

Thin: every route checks the role (supervisor or admin), reads a bounded body and calls
`SupervisorDesk`; its `SupervisorError` becomes the HTTP status it names. The socket is the
agent socket's machinery (`ws.serve_socket`): JSON events out, 20 ms PCMU frames both ways.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, WebSocket, status
from pydantic import BaseModel, Field

from ...services.accounts import Principal
from ...services.supervisor import SupervisorDesk, SupervisorSession
from ...services.supervisor.views import LiveView, Monitoring
from ..deps import Deps, require_roles
from ..ws import Outbox, serve_socket
from .desk import desk_errors

router = APIRouter(prefix="/api/supervisor", tags=["supervisor"])

Overseer = Annotated[Principal, require_roles("supervisor", "admin")]
Mode = Literal["listen", "whisper", "barge"]
Username = Annotated[str, Field(min_length=1, max_length=64)]


def get_supervisor(deps: Deps) -> SupervisorDesk:
    if deps.supervisor is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the ACD is not running")
    return deps.supervisor


SupervisorDep = Annotated[SupervisorDesk, Depends(get_supervisor)]


class MonitorRequest(BaseModel):
    call_id: str = Field(min_length=1, max_length=255)
    mode: Mode
    via: Literal["page", "phone", "number"] = "page"
    number: str | None = Field(default=None, min_length=1, max_length=16)
    whisper_to: Username | None = None  # an agent on the call (whisper only; None: the owner)


class SwitchRequest(BaseModel):
    mode: Mode
    whisper_to: Username | None = None


@router.get("/live")
async def live(user: Overseer, supervisor: SupervisorDep) -> LiveView:
    """Live calls and conferences, agents, queues, and this user's monitoring."""
    return supervisor.live(user.username)


@router.post("/monitor")
async def monitor(body: MonitorRequest, user: Overseer, supervisor: SupervisorDep) -> Monitoring:
    """Join a live call (audited first); answers once joined: at once from this page, when
    the phone or number answers otherwise."""
    with desk_errors():
        return await supervisor.monitor(
            user.username,
            body.call_id,
            body.mode,
            body.via,
            number=body.number,
            whisper_to=body.whisper_to,
        )


@router.put("/monitor")
async def switch(body: SwitchRequest, user: Overseer, supervisor: SupervisorDep) -> Monitoring:
    """Listen, whisper or barge on the call being monitored, without re-dialling."""
    with desk_errors():
        return await supervisor.switch(user.username, body.mode, whisper_to=body.whisper_to)


@router.delete("/monitor", status_code=status.HTTP_204_NO_CONTENT)
async def leave(user: Overseer, supervisor: SupervisorDep) -> None:
    """Stop monitoring: the supervisor's call is hung up."""
    with desk_errors():
        await supervisor.leave(user.username)


@router.websocket("/ws")
async def supervisor_socket(
    websocket: WebSocket, user: Overseer, supervisor: SupervisorDep, deps: Deps
) -> None:
    def open_session(outbox: Outbox) -> SupervisorSession:
        return supervisor.connect(
            user.username, deliver=outbox.event, close=outbox.close, send_audio=outbox.frame
        )

    await serve_socket(
        websocket,
        user,
        deps,
        kind="supervisor",
        open_session=open_session,
        audio_in=supervisor.audio_in,
        close_session=supervisor.disconnect,
    )
