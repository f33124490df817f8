"""A simulated agent page: what the browser does, in Python, over the same HTTP and WebSocket.

Logs in (session cookie, CSRF token), opens the agent socket with the page's Origin, records
every event, decodes the audio frames it receives (G.711 µ-law, docs/agent-api.md) and can
send a tone as 20 ms frames with sequence numbers, paced on an absolute schedule like the
page's AudioWorklet. Used by the desk tests and by bench/bench_browser_agents.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from callcenter.media import PCM
from callcenter.media.g711 import ulaw_decode, ulaw_encode

HEADER = struct.Struct("!BBHI")
FRAME = 160


def tone(frequency: float, seconds: float, amplitude: float = 8000.0) -> PCM:
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


class PageClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self.csrf = ""
        self.events: list[dict[str, Any]] = []
        self.received = bytearray()  # µ-law bytes of every audio frame, in arrival order
        self.frames_in = 0
        self.socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._seq = 0
        self.changed = asyncio.Event()
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    # --- HTTP -------------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> None:
        response = await self.http.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        return await self.http.request(method, path, json=body, headers=headers)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.call(method, path, body)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    # --- the socket -------------------------------------------------------------------------

    async def open_socket(self, path: str = "/api/agent/ws") -> None:
        """The page's socket: the agent's, or another page's (`/api/supervisor/ws`)."""
        ws_url = self.base_url.replace("http://", "ws://") + path
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.socket = await connect(
            ws_url,
            additional_headers={"Cookie": cookie, "Origin": self.base_url},
            max_size=2**16,
        )
        self._reader = asyncio.create_task(self._read(self.socket))

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in socket:
                if isinstance(message, bytes):
                    if len(message) == HEADER.size + FRAME and message[0] == 1:
                        self.received += message[HEADER.size :]
                        self.frames_in += 1
                    continue
                event = json.loads(message)
                self.events.append(event)
                if self.on_event is not None:
                    self.on_event(event)
                self.changed.set()

    async def close_socket(self) -> None:
        await self.stop_sending()
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.socket = None

    async def close(self) -> None:
        await self.close_socket()
        await self.http.aclose()

    async def next_event(
        self,
        kind: str,
        timeout: float = 5.0,
        after: int = 0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The first event of `kind` (for which `where` holds) at index >= `after`, waiting
        for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events[after:]:
                if event.get("type") == kind and (where is None or where(event)):
                    return event
            left = deadline - loop.time()
            if left <= 0:
                seen = [e.get("type") for e in self.events[after:]]
                raise AssertionError(f"no {kind} event within {timeout} s (saw {seen})")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    # --- audio ------------------------------------------------------------------------------

    def audio(self) -> PCM:
        return ulaw_decode(bytes(self.received))

    def send_pcm(self, pcm: PCM, *, loop_forever: bool = False) -> None:
        """Send `pcm` as 20 ms frames, one per 20 ms on an absolute schedule."""
        self._sender = asyncio.create_task(self._send(pcm, loop_forever))

    async def stop_sending(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

    async def _send(self, pcm: PCM, loop_forever: bool) -> None:
        assert self.socket is not None
        loop = asyncio.get_running_loop()
        frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
        start = loop.time()
        n = 0
        while True:
            for frame in frames:
                payload = ulaw_encode(frame)
                await self.socket.send(HEADER.pack(1, 0, 0, self._seq & 0xFFFFFFFF) + payload)
                self._seq += 1
                n += 1
                delay = start + n * 0.02 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not loop_forever:
                return
