"""Every route of the app is guarded by the roles it declares: found, not listed by hand.

The checks walk `app.routes` of the app `create_app` builds, so a router added to
`callcenter.web.app.ROUTERS` is covered without touching this file:

- every route under /api except the login declares roles (`require_roles(...)` or
  `CurrentUser`), and every other route is a known public one (the pages, /static, the docs);
- for each HTTP route that declares roles: without a session 401; logged in with any role it
  does not allow 403 (with a valid CSRF token, so the refusal is about the role); and for
  POST/PUT/PATCH/DELETE, an allowed user without the right CSRF token 403;
- for each WebSocket route: the handshake without a session is refused with 401 and with a
  role it does not allow with 403 (a WebSocket denial response), driven in-process over ASGI.

The guards run before anything else a route depends on (path values are dummies, there is
no body), so a route whose 401 comes out as a 404, 422 or 503 fails here: put the user
parameter first. The probe routes at the end prove the checks themselves catch mistakes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.types import Message

from callcenter.db.models import ROLES
from callcenter.services.accounts import AccountService, Principal
from callcenter.web.app import PAGES, SESSION_COOKIE, create_app
from callcenter.web.deps import (
    UNSAFE_METHODS,
    CsrfChecked,
    CurrentUser,
    declared_roles,
    require_roles,
)
from callcenter.web.routes.auth import LOGIN_PATH

from .conftest import BASE_URL, LoggedIn, client_for, csrf, login, make_deps

CSRF_REFUSED: Final = "CSRF token missing or wrong"
# Routes anyone may reach: the login page and the agent page (each asks /api/auth/me itself),
# their files, and the API's documentation.
PUBLIC: Final = {*PAGES, "/static", "/api/docs", "/api/openapi.json", LOGIN_PATH}
PARAMETER = re.compile(r"\{[^}]*\}")


def concrete(path: str) -> str:
    """The path with a dummy for each parameter ("1" fits `{id}: int` and `{call_id}: str`)."""
    return PARAMETER.sub("1", path)


@dataclass(frozen=True, slots=True)
class Found:
    """A route as the app serves it: its full path and the roles it declares (None: none)."""

    path: str
    kind: Literal["http", "websocket", "other"]
    methods: tuple[str, ...]
    roles: frozenset[str] | None


def routes_of(app: FastAPI) -> list[Found]:
    """Every route of `app`, those of included routers with their prefix and dependencies."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # before FastAPI 0.16x, include_router copied routes into app.routes
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    found = []
    for context in contexts:
        original = getattr(context, "original_route", context)
        dependant = getattr(context, "dependant", None)
        roles = declared_roles(dependant) if isinstance(dependant, Dependant) else None
        kind: Literal["http", "websocket", "other"] = "other"
        if isinstance(original, APIRoute):
            kind = "http"
        elif isinstance(original, APIWebSocketRoute):
            kind = "websocket"
        methods = tuple(sorted(getattr(context, "methods", None) or ()))
        found.append(Found(context.path, kind, methods, roles))
    return found


def undeclared(app: FastAPI) -> list[str]:
    """Routes that are not known public ones and declare no roles (and a guarded login)."""
    problems = []
    for route in routes_of(app):
        if route.path == LOGIN_PATH and route.roles is not None:
            problems.append(f"{route.path}: the login must be public, it declares {route.roles}")
        elif route.path not in PUBLIC and route.roles is None:
            problems.append(f"{route.path}: declares no roles (require_roles(...) or CurrentUser)")
    return problems


def guarded_http(app: FastAPI) -> list[tuple[str, str, frozenset[str]]]:
    """(method, path, roles) of every HTTP route that declares roles."""
    return [
        (method, route.path, route.roles)
        for route in routes_of(app)
        if route.kind == "http" and route.roles is not None
        for method in route.methods
    ]


def guarded_websockets(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    return [
        (route.path, route.roles)
        for route in routes_of(app)
        if route.kind == "websocket" and route.roles is not None
    ]


async def check_http_guards(app: FastAPI, logged_in: dict[str, LoggedIn]) -> list[str]:
    problems = []
    async with client_for(app, address="10.0.1.1") as anonymous:
        for method, path, roles in guarded_http(app):
            url = concrete(path)
            where = f"{method} {path}"
            answer = await anonymous.request(method, url)
            if answer.status_code != 401:
                problems.append(f"{where} without a session: {answer.status_code}, not 401")
            for role in sorted(set(ROLES) - roles):
                user = logged_in[role]
                answer = await user.client.request(method, url, headers=csrf(user.token))
                if answer.status_code != 403 or answer.json()["detail"] == CSRF_REFUSED:
                    problems.append(f"{where} as {role}: {answer.status_code} {answer.text}")
            if method not in UNSAFE_METHODS:
                continue
            for role in sorted(roles):
                user = logged_in[role]
                for headers in ({}, csrf(user.token[:-1])):
                    answer = await user.client.request(method, url, headers=headers)
                    if answer.status_code != 403 or answer.json() != {"detail": CSRF_REFUSED}:
                        problems.append(
                            f"{where} as {role} with CSRF headers {headers}: "
                            f"{answer.status_code} {answer.text}"
                        )
    return problems


async def handshake(app: FastAPI, path: str, cookie: str | None) -> int | str:
    """Open a WebSocket to `path` over ASGI (same origin); the HTTP status of a denial, or
    "accepted" / "closed"."""
    headers = [(b"host", b"testserver"), (b"origin", BASE_URL.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 40000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    first = sent[0]
    if first["type"] == "websocket.http.response.start":
        status: int = first["status"]
        return status
    return "accepted" if first["type"] == "websocket.accept" else "closed"


async def check_websocket_guards(app: FastAPI, logged_in: dict[str, LoggedIn]) -> list[str]:
    problems = []
    for path, roles in guarded_websockets(app):
        url = concrete(path)
        if (got := await handshake(app, url, None)) != 401:
            problems.append(f"WebSocket {path} without a session: {got}, not 401")
        for role in sorted(set(ROLES) - roles):
            cookie = logged_in[role].client.cookies[SESSION_COOKIE]
            if (got := await handshake(app, url, cookie)) != 403:
                problems.append(f"WebSocket {path} as {role}: {got}, not 403")
    return problems


# --- the app as built ----------------------------------------------------------------------


def test_every_api_route_declares_its_roles(app: FastAPI) -> None:
    assert undeclared(app) == []
    assert ("POST", "/api/auth/logout", frozenset(ROLES)) in guarded_http(app)
    assert ("GET", "/api/auth/me", frozenset(ROLES)) in guarded_http(app)
    overseers = frozenset({"supervisor", "admin"})
    for method, path in (
        ("GET", "/api/supervisor/live"),
        ("POST", "/api/supervisor/monitor"),
        ("PUT", "/api/supervisor/monitor"),
        ("DELETE", "/api/supervisor/monitor"),
    ):
        assert (method, path, overseers) in guarded_http(app)


@pytest.mark.asyncio
async def test_every_http_route_refuses_the_anonymous_the_other_roles_and_bad_csrf(
    app: FastAPI, logged_in: dict[str, LoggedIn]
) -> None:
    assert await check_http_guards(app, logged_in) == []


@pytest.mark.asyncio
async def test_every_websocket_route_refuses_the_anonymous_and_the_other_roles(
    app: FastAPI, logged_in: dict[str, LoggedIn]
) -> None:
    # The agent socket is one; a check that found none would prove nothing.
    assert ("/api/agent/ws", frozenset({"agent"})) in guarded_websockets(app)
    assert ("/api/supervisor/ws", frozenset({"supervisor", "admin"})) in guarded_websockets(app)
    assert await check_websocket_guards(app, logged_in) == []


# --- the checks catch mistakes (probe routes added to the app) -----------------------------

probes = APIRouter(prefix="/api/probe")


@probes.post("/calls/{call_id}/answer")
async def agent_only(user: Annotated[Principal, require_roles("agent")], call_id: str) -> str:
    return call_id


@probes.get("/items/{id}")
async def any_user(user: CurrentUser, id: int) -> int:
    return id


# A router-level guard and a route-level guard: both must pass, so supervisors only.
narrowed = APIRouter(
    prefix="/api/probe/narrowed", dependencies=[require_roles("agent", "supervisor")]
)


@narrowed.delete("/{id}")
async def supervisor_only(
    id: int, user: Annotated[Principal, require_roles("supervisor", "admin")]
) -> None:
    return None


@probes.websocket("/ws")
async def qa_socket(websocket: WebSocket, user: Annotated[Principal, require_roles("qa")]) -> None:
    await websocket.accept()
    await websocket.close()


@pytest_asyncio.fixture
async def probed(accounts: AccountService) -> AsyncIterator[FastAPI]:
    app = create_app(make_deps(accounts))
    app.include_router(probes)
    app.include_router(narrowed)
    yield app


def test_probe_routes_are_found_with_their_roles(probed: FastAPI) -> None:
    found = guarded_http(probed)
    assert ("POST", "/api/probe/calls/{call_id}/answer", frozenset({"agent"})) in found
    assert ("GET", "/api/probe/items/{id}", frozenset(ROLES)) in found
    assert ("DELETE", "/api/probe/narrowed/{id}", frozenset({"supervisor"})) in found
    assert ("/api/probe/ws", frozenset({"qa"})) in guarded_websockets(probed)
    assert undeclared(probed) == []


@pytest.mark.asyncio
async def test_probe_routes_pass_the_checks_and_their_owners_get_in(
    probed: FastAPI, accounts: AccountService
) -> None:
    clients = {role: client_for(probed, address=f"10.0.2.{n}") for n, role in enumerate(ROLES)}
    try:
        logged_in = {r: LoggedIn(r, c, await login(c, r)) for r, c in clients.items()}
        assert await check_http_guards(probed, logged_in) == []
        assert await check_websocket_guards(probed, logged_in) == []
        agent, supervisor = logged_in["agent"], logged_in["supervisor"]
        answer = await agent.client.post("/api/probe/calls/c-1/answer", headers=csrf(agent.token))
        assert (answer.status_code, answer.json()) == (200, "c-1")
        answer = await supervisor.client.delete(
            "/api/probe/narrowed/7", headers=csrf(supervisor.token)
        )
        assert answer.status_code == 200
        qa_cookie = logged_in["qa"].client.cookies[SESSION_COOKIE]
        assert await handshake(probed, "/api/probe/ws", qa_cookie) == "accepted"
    finally:
        for client in clients.values():
            await client.aclose()


def test_a_route_without_roles_is_caught(accounts: AccountService) -> None:
    app = create_app(make_deps(accounts))
    careless = APIRouter()

    @careless.get("/api/probe/open")
    async def open_route() -> str:
        return "anyone"

    @careless.post("/api/probe/csrf-is-not-a-role")
    async def csrf_only(checked: CsrfChecked) -> None:
        return None

    @careless.get("/hidden-page")
    async def hidden() -> str:
        return "not a known page"

    app.include_router(careless)
    assert undeclared(app) == [
        "/api/probe/open: declares no roles (require_roles(...) or CurrentUser)",
        "/api/probe/csrf-is-not-a-role: declares no roles (require_roles(...) or CurrentUser)",
        "/hidden-page: declares no roles (require_roles(...) or CurrentUser)",
    ]


def test_roles_are_checked_when_declared() -> None:
    with pytest.raises(ValueError, match="roles must be some of"):
        require_roles("boss")
    with pytest.raises(ValueError, match="roles must be some of"):
        require_roles()
