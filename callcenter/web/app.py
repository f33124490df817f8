"""The FastAPI app factory: routers, the session cookie, error bodies, the static pages.

Owns how the web layer is put together: `create_app(deps)` is all the composition root
(`callcenter.cli`) calls, and it serves the result with uvicorn. Every error leaves as JSON
`{"detail": "<for a person>"}` (docs/agent-api.md), never as a traceback or an echo of the
input. Must not know: business rules (services), the engine.

Adding a router: write `routes/<name>.py` with a module-level `router = APIRouter(...)`, give
every route its roles (`require_roles(...)` or `CurrentUser` from `callcenter.web.deps`), and
add the router to `ROUTERS` below.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, cast

from fastapi import APIRouter, FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from .. import __version__
from . import ws
from .deps import WebDeps
from .routes import agent, audit, auth, customers, qa, queues, recordings, supervisor

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
SESSION_COOKIE: Final = "callcenter_session"
# A working day: after that the agent logs in again, whatever it did meanwhile (the cookie is
# written at login only, so this is counted from the login).
SESSION_MAX_AGE: Final = 12 * 60 * 60
MIN_SECRET_KEY_LENGTH: Final = 32

# The API's routers, matched in this order (docs/agent-api.md). Every route under /api except
# the login must declare its roles; tests/web/test_route_roles.py checks each route found in
# the app, so a new router is covered by adding it here.
ROUTERS: Final[Sequence[APIRouter]] = (
    auth.router,
    agent.router,
    customers.router,
    queues.router,
    recordings.router,
    recordings.erasures,
    qa.router,
    audit.router,
    supervisor.router,
    ws.router,
)

# Public pages: each checks /api/auth/me itself and goes to / (the login page) without a session.
PAGES: Final = {
    "/": "index.html",
    "/agent": "agent.html",
    "/qa": "qa.html",
    "/supervisor": "supervisor.html",
}

# RFC 9110 names; Starlette's constants took these names only in 0.48, which fastapi>=0.115
# does not guarantee.
CONTENT_TOO_LARGE: Final = 413
UNPROCESSABLE_CONTENT: Final = 422

# At most this many validation problems are described in one 422 answer.
MAX_PROBLEMS: Final = 5


def create_app(deps: WebDeps) -> FastAPI:
    """The web app over `deps`; serve it with uvicorn (or call it as an ASGI app in tests)."""
    if len(deps.secret_key) < MIN_SECRET_KEY_LENGTH:
        # Anyone who guesses the key can sign a session cookie for any user.
        raise ValueError(
            f"the session secret key needs at least {MIN_SECRET_KEY_LENGTH} characters"
        )
    app = FastAPI(
        title="callcenter",
        version=__version__,
        description="The agent API: REST control and WebSocket events (docs/agent-api.md).",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.deps = deps
    for router in ROUTERS:
        app.include_router(router)
    for path, page in PAGES.items():
        app.add_api_route(path, _page(page), methods=["GET"], include_in_schema=False)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # The handler serves WebSocket handshakes too; Starlette types a handler as one or the other.
    app.add_exception_handler(StarletteHTTPException, cast(ExceptionHandler, _http_error))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)

    # add_middleware wraps: the last added is outermost.
    app.add_middleware(
        SessionMiddleware,
        secret_key=deps.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="strict",
        https_only=deps.https_only,
    )
    app.add_middleware(_LimitBody, max_bytes=deps.max_body_bytes)
    app.add_middleware(_SecurityHeaders)
    return app


def _page(name: str) -> Callable[[], Awaitable[Response]]:
    async def page() -> Response:
        path = STATIC_DIR / name
        if not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "page not found")
        # no-cache: revalidate (ETag) so a new release's page is picked up at once.
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    page.__name__ = f"page_{name.split('.')[0]}"
    return page


# --- errors: always {"detail": ...} --------------------------------------------------------


async def _http_error(connection: Request | WebSocket, exc: Exception) -> Response | None:
    assert isinstance(exc, StarletteHTTPException)
    if connection.scope["type"] == "websocket":
        # Refused before the handshake: answer with HTTP (a denial response) where the server
        # can, else close with "policy violation".
        extensions = connection.scope.get("extensions") or {}
        if isinstance(connection, WebSocket) and "websocket.http.response" not in extensions:
            await connection.close(1008)
            return None
    if exc.status_code in (status.HTTP_204_NO_CONTENT, status.HTTP_304_NOT_MODIFIED):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(connection: HTTPConnection, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # A sentence for a person, never the input back (it may be a password).
    problems = []
    for error in list(exc.errors())[:MAX_PROBLEMS]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}"[:200])
    detail = "; ".join(problems) or "invalid request"
    return JSONResponse({"detail": detail}, status_code=UNPROCESSABLE_CONTENT)


async def _internal_error(connection: HTTPConnection, exc: Exception) -> Response:
    # Starlette re-raises after this answer, so the server still logs the traceback.
    return JSONResponse(
        {"detail": "internal error: the service logged it"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


# --- middleware ----------------------------------------------------------------------------


class _LimitBody:
    """413 for request bodies over `max_bytes`, before they are buffered in memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            # Chunked bodies have no Content-Length: count as they arrive.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(CONTENT_TOO_LARGE, self._detail)
            return message

        await self.app(scope, limited, send)

    @property
    def _detail(self) -> str:
        return f"request body over {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": self._detail}, status_code=CONTENT_TOO_LARGE)
        await response(scope, receive, send)


class _SecurityHeaders:
    """Headers every answer carries: no framing (clickjacking), no MIME sniffing, no referrer
    to other sites, and API answers (which hold customer data) are never cached."""

    HEADERS: Final = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"frame-ancestors 'none'"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.HEADERS if h[0] not in present)
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
