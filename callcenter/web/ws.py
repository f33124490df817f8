"""The pages' WebSockets: typed events out, 20 ms audio frames both ways.

Owns one socket's life (`serve_socket`, shared by the agent page's socket here and the
supervisor dashboard's in routes/supervisor.py): the guard (the route's role, same-origin
`Origin`, the session re-checked while the socket lives), the send queue (one task drains it:
events are never dropped, audio frames are when the page reads too slowly — stale audio is
worse than a gap — and a page that stops reading is closed), and the receive loop (binary
frames to the service's audio, `ping` answered). The service (the agent desk, the supervisor
desk) decides what is said; docs/agent-api.md and docs/supervisor-api.md document it. Must
not know the engine.
"""

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Annotated, Final, TypeVar

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from ..services.accounts import Principal
from ..services.acd.control import ControlError
from ..services.desk import DeskSession
from .deps import Deps, WebDeps, check_origin, require_roles
from .routes.desk import DeskDep

log = logging.getLogger(__name__)

router = APIRouter()

MAX_AUDIO_QUEUED: Final = 10
"""Frames (200 ms) waiting to be sent before the oldest is dropped."""
MAX_EVENTS_QUEUED: Final = 500
"""Events waiting for a page that does not read; more closes the socket (it reconnects)."""
MAX_TEXT: Final = 4096
POLICY_VIOLATION: Final = 1008
SESSION_ENDED: Final = 4401
"""Close code: the session behind the socket is no longer valid (log in again)."""
SESSION_RECHECK: Final = 15.0
TRY_AGAIN: Final = 1013

Session = TypeVar("Session")


class Outbox:
    """What one socket still has to send, drained by one task."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.events: deque[str] = deque()
        self.audio: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.close_code: int | None = None
        self.audio_dropped = 0

    def event(self, event: BaseModel) -> None:
        self.text(event.model_dump_json())

    def text(self, message: str) -> None:
        if len(self.events) >= MAX_EVENTS_QUEUED:
            self.close(TRY_AGAIN)
            return
        self.events.append(message)
        self.wake.set()

    def frame(self, data: bytes) -> None:
        if len(self.audio) >= MAX_AUDIO_QUEUED:
            self.audio.popleft()
            self.audio_dropped += 1
        self.audio.append(data)
        self.wake.set()

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        self.wake.set()

    async def run(self) -> None:
        websocket = self.websocket
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.events or self.audio:
                if self.events:
                    await websocket.send_text(self.events.popleft())
                else:
                    await websocket.send_bytes(self.audio.popleft())
            if self.close_code is not None:
                with contextlib.suppress(Exception):
                    await websocket.close(self.close_code)
                return


async def _watch(deps: WebDeps, user: Principal, outbox: Outbox, kind: str) -> None:
    """The session stays valid while the socket lives: a disabled user, a changed role or
    password (which ends the user's other sessions) closes it, like a request would get 401."""
    while True:
        await asyncio.sleep(SESSION_RECHECK)
        try:
            now = await deps.accounts.principal(user.username)
        except Exception as exc:  # the database: keep the socket, try again later
            log.warning("%s socket of %s: session check failed: %s", kind, user.username, exc)
            continue
        if now is None or now.session_stamp != user.session_stamp or now.role != user.role:
            log.info("%s socket of %s: session no longer valid; closing", kind, user.username)
            outbox.close(SESSION_ENDED)
            return


@router.websocket("/api/agent/ws")
async def agent_socket(
    websocket: WebSocket,
    user: Annotated[Principal, require_roles("agent")],
    desk: DeskDep,
    deps: Deps,
) -> None:
    def open_session(outbox: Outbox) -> DeskSession:
        return desk.connect(
            user.username, deliver=outbox.event, close=outbox.close, send_audio=outbox.frame
        )

    await serve_socket(
        websocket,
        user,
        deps,
        kind="agent",
        open_session=open_session,
        audio_in=desk.audio_in,
        close_session=desk.disconnect,
    )


async def serve_socket(
    websocket: WebSocket,
    user: Principal,
    deps: WebDeps,
    *,
    kind: str,
    open_session: Callable[[Outbox], Session],
    audio_in: Callable[[Session, bytes], None],
    close_session: Callable[[Session], None],
) -> None:
    """One page's socket, from the handshake (the route has checked the role) to its close:
    `open_session(outbox)` makes the service's session (a ControlError refuses the socket
    with 1008), binary frames go to `audio_in`, `close_session` is called once at the end."""
    if not check_origin(websocket):
        await websocket.close(POLICY_VIOLATION, "cross-origin socket refused")
        return
    await websocket.accept()
    outbox = Outbox(websocket)
    sender = asyncio.create_task(outbox.run(), name=f"ws-send-{user.username}")
    watcher = asyncio.create_task(_watch(deps, user, outbox, kind), name=f"ws-auth-{user.username}")
    try:
        try:
            session = open_session(outbox)
        except ControlError as exc:
            outbox.close(POLICY_VIOLATION)
            log.info("%s socket of %s refused: %s", kind, user.username, exc.detail)
            await sender
            return
        try:
            await _receive(websocket, sender, outbox, lambda data: audio_in(session, data))
        finally:
            close_session(session)
    except WebSocketDisconnect:
        pass
    except Exception as exc:
        log.warning("%s socket of %s failed: %s", kind, user.username, exc)
    finally:
        for task in (sender, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _receive(
    websocket: WebSocket,
    sender: asyncio.Task[None],
    outbox: Outbox,
    audio_in: Callable[[bytes], None],
) -> None:
    """The page's frames until it goes (or we close it): audio in, pings answered."""
    while not sender.done():
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            audio_in(data)
            continue
        text = message.get("text")
        if text is not None and len(text) <= MAX_TEXT and _is_ping(text):
            outbox.text('{"type":"pong"}')


def _is_ping(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"
