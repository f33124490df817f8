"""The web app served by uvicorn inside `callcenter serve`'s event loop (a `Service`).

Owns the uvicorn server's life: start (bind, wait until it listens, so port 0 names a real
port), stop (graceful: open sockets are closed, then the task is awaited), and the summary
line. One loop for SIP, media and HTTP: the agent's WebSocket hands audio frames to the engine
without crossing threads. Signals stay `serve`'s: uvicorn's own handlers are not installed.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

MAX_WS_MESSAGE = 64 * 1024
"""Larger WebSocket messages are refused by the server before we see them (an audio frame is
168 or 328 bytes)."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `serve` owns SIGINT/SIGTERM and stops every service in order.
        yield


class WebServer:
    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            ws="websockets-sansio",
            ws_max_size=MAX_WS_MESSAGE,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            log_config=None,
            access_log=False,
            server_header=False,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    async def start(self) -> None:
        """Bind (OSError when the port is taken) and serve until `stop`."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError(f"HTTP server on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def listening(self) -> str:
        return f"HTTP: http://{self.host}:{self.port}/ (agent page /agent, API docs /api/docs)"
