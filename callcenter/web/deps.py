"""What routes depend on: the services (`WebDeps`), the logged-in user and its role, CSRF.

Owns the web layer's guards, as named `Annotated` dependencies (DESIGN convention 10):

- `Deps`: the `WebDeps` the app was built with.
- `CurrentUser`: any logged-in user (401 otherwise); for state-changing methods also the CSRF
  check (403). It is `require_roles(*ROLES)`, so it counts as declaring roles.
- `require_roles("agent", ...)`: the same, and 403 for any other role. Every route under /api
  except the login declares its roles this way; `tests/web/test_route_roles.py` finds the
  `RoleGuard`s in each route's dependency tree and fails for a route that has none.
- `CsrfChecked`: the CSRF check alone (already part of every role guard).
- `check_origin(connection)`: same-origin test for WebSocket handshakes (cookies ride along
  on cross-site WebSocket connections; SameSite does not stop them all).

Must not know: business rules (they live in `callcenter.services`), the engine.

No `from __future__ import annotations` here: FastAPI reads the annotations of `RoleGuard`'s
`__call__` at runtime, and a callable object has no `__globals__` to resolve strings in.
"""

import hmac
from collections.abc import Set
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, status
from fastapi.dependencies.models import Dependant
from starlette.requests import HTTPConnection

from ..db.models import ROLES
from ..services.accounts import AccountService, Principal
from ..services.audit import AuditLog
from ..services.desk import AgentDesk
from ..services.qa import QaServices
from ..services.recordings.catalogue import RecordingCatalogue
from ..services.recordings.retention import RecordingRetention
from ..services.supervisor import SupervisorDesk

# Session keys. The session is Starlette's signed (not encrypted) cookie: nothing secret in it.
SESSION_USER: Final = "user"
SESSION_STAMP: Final = "stamp"
SESSION_CSRF: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class WebDeps:
    """Everything the web app needs, built by the composition root (`callcenter.cli`)."""

    accounts: AccountService
    # Signs the session cookie: at least 32 random bytes, the same across restarts (or every
    # session ends at a restart) and across processes behind one load balancer.
    secret_key: str
    # Marks the session cookie Secure; set it whenever the pages are served over HTTPS.
    https_only: bool = False
    # Request bodies above this are refused with 413 before they are read into memory.
    max_body_bytes: int = 1024 * 1024
    # The agent desk (the agent page's REST routes and WebSocket, customers, queue stats);
    # None when the ACD is not running: those routes answer 503.
    desk: AgentDesk | None = None
    # The recordings catalogue (QA search and replay); None: those routes answer 503.
    recordings: RecordingCatalogue | None = None
    # The hash-chained audit log: listens, downloads, pauses (None: refuse those routes).
    audit: AuditLog | None = None
    # Scorecards, evaluations, comments and reviewers' queues (None: those routes answer 503;
    # a qa user then sees no recording at all, since their queues cannot be known).
    qa: QaServices | None = None
    # Deleting, legal hold and erasure of recordings (None: those routes answer 503).
    retention: RecordingRetention | None = None
    # The supervisor dashboard: live calls, agents, queues, monitoring (None: 503).
    supervisor: SupervisorDesk | None = None


def get_deps(connection: HTTPConnection) -> WebDeps:
    deps = connection.app.state.deps
    assert isinstance(deps, WebDeps)
    return deps


Deps = Annotated[WebDeps, Depends(get_deps)]


async def _session_principal(connection: HTTPConnection, deps: Deps) -> Principal:
    """The logged-in user, re-read from the database; 401 when there is none.

    A separate dependency so FastAPI caches it per request: several guards on one route
    (a router's and a route's) read the user once.
    """
    session = connection.session
    username = session.get(SESSION_USER)
    stamp = session.get(SESSION_STAMP)
    if not isinstance(username, str) or not isinstance(stamp, str):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not logged in")
    principal = await deps.accounts.principal(username)
    if principal is None or not _same(principal.session_stamp, stamp):
        # Disabled, deleted, or the password changed since this session logged in. Clearing
        # the session makes the answer expire the cookie.
        session.clear()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not logged in")
    return principal


def check_csrf(connection: HTTPConnection) -> None:
    """403 unless a state-changing request carries the session's CSRF token.

    The token is random per login and only readable by our own pages (from the login answer
    or /api/auth/me), so another site cannot put it in a header.
    """
    if connection.scope["type"] != "http" or connection.scope["method"] not in UNSAFE_METHODS:
        return
    expected = connection.session.get(SESSION_CSRF)
    sent = connection.headers.get(CSRF_HEADER)
    if not isinstance(expected, str) or sent is None or not _same(sent, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong")


CsrfChecked = Annotated[None, Depends(check_csrf)]


class RoleGuard:
    """A dependency admitting logged-in users of `roles` (401 / 403 otherwise).

    Returns the `Principal`. `roles` is public so a test can list what each route allows.
    """

    def __init__(self, roles: Set[str]) -> None:
        unknown = set(roles) - set(ROLES)
        if not roles or unknown:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}, not {sorted(unknown)}")
        self.roles: frozenset[str] = frozenset(roles)

    async def __call__(
        self,
        connection: HTTPConnection,
        principal: Annotated[Principal, Depends(_session_principal)],
    ) -> Principal:
        # Not logged in (401) comes before a bad token (403), so a client with an expired
        # session is told to log in again rather than that its token is wrong.
        check_csrf(connection)
        if principal.role not in self.roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the role {' or '.join(sorted(self.roles))}",
            )
        return principal

    def __repr__(self) -> str:
        return f"RoleGuard({sorted(self.roles)!r})"


def require_roles(*roles: str) -> Any:
    """`Annotated[Principal, require_roles("agent")]`: the user, if it has one of `roles`.

    Returns `Depends(RoleGuard(roles))`, so it also fits `dependencies=[...]` of a route or a
    router. Typed `Any` like `fastapi.Depends` itself.
    """
    return Depends(RoleGuard(frozenset(roles)))


def declared_roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles a route admits (`route.dependant`): None when it declares none.

    Every `RoleGuard` in the dependency tree must pass, so the answer is their intersection.
    """
    found: frozenset[str] | None = None
    pending = [dependant]
    while pending:
        node = pending.pop()
        if isinstance(node.call, RoleGuard):
            found = node.call.roles if found is None else found & node.call.roles
        pending.extend(node.dependencies)
    return found


# Any logged-in user: every role.
CurrentUser = Annotated[Principal, require_roles(*ROLES)]


def check_origin(connection: HTTPConnection) -> bool:
    """True when the `Origin` header names the host:port the request was sent to (`Host`).

    For WebSocket handshakes, which browsers send with cookies from any site: refuse the
    socket when this is False. A missing or "null" Origin is False. A Host without a port is
    taken to use the default port of the Origin's scheme (so it works behind a TLS proxy).
    """
    origin = connection.headers.get("origin")
    host = connection.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            return False
        default_port = 443 if parts.scheme == "https" else 80
        origin_at = (parts.hostname, parts.port or default_port)
        host_parts = urlsplit(f"//{host}")
        if host_parts.hostname is None:
            return False
        host_at = (host_parts.hostname, host_parts.port or default_port)
    except ValueError:  # a malformed port or IPv6 literal
        return False
    return origin_at == host_at


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str; header values may be anything.
    return hmac.compare_digest(a.encode(), b.encode())
