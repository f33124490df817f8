"""`/api/auth`: logging in and out, and who is logged in (docs/agent-api.md, "Logging in").

Thin: `AccountService` decides who may log in and keeps the throttles; this module turns its
answers into HTTP and keeps the session cookie (the user, a stamp of the password, the CSRF
token).
"""

import math
import secrets

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ...services.accounts import (
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    AccountLocked,
    BadCredentials,
    Principal,
    TooManyAttempts,
)
from ..deps import (
    SESSION_CSRF,
    SESSION_STAMP,
    SESSION_USER,
    CurrentUser,
    Deps,
    check_origin,
)

router = APIRouter(prefix="/api/auth", tags=["auth"])

LOGIN_PATH = "/api/auth/login"


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=MAX_USERNAME_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserView(BaseModel):
    """A user as the pages show it."""

    username: str
    role: str
    display_name: str

    @classmethod
    def of(cls, principal: Principal) -> "UserView":
        return cls(
            username=principal.username, role=principal.role, display_name=principal.display_name
        )


class SessionView(BaseModel):
    """The login answer and `/me`: who is logged in, and the token for `X-CSRF-Token`."""

    user: UserView
    csrf_token: str


def _refuse_cross_origin(request: Request) -> None:
    # SameSite=Strict does not cover the login itself (there is no cookie yet): without this,
    # another site could log a victim's browser into the attacker's account. Clients that
    # send no Origin (scripts, curl) are not browsers on another site.
    if "origin" in request.headers and not check_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin login refused")


@router.post(
    "/login",
    dependencies=[Depends(_refuse_cross_origin)],
    responses={
        401: {"description": "wrong username or password"},
        423: {"description": "the account is locked (Retry-After)"},
        429: {"description": "too many attempts from this address (Retry-After)"},
    },
)
async def login(body: LoginBody, request: Request, deps: Deps) -> SessionView:
    """Log in; the session cookie is set and the CSRF token returned."""
    address = request.client.host if request.client is not None else "unknown"
    try:
        principal = await deps.accounts.authenticate(body.username, body.password, address=address)
    except BadCredentials as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    except AccountLocked as exc:
        raise HTTPException(status.HTTP_423_LOCKED, str(exc), _retry_after(exc)) from None
    except TooManyAttempts as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), _retry_after(exc)
        ) from None
    # A new session for every login: nothing from before it (another user's data, an old
    # CSRF token) survives.
    session = request.session
    session.clear()
    session[SESSION_USER] = principal.username
    session[SESSION_STAMP] = principal.session_stamp
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return SessionView(user=UserView.of(principal), csrf_token=session[SESSION_CSRF])


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, request: Request) -> Response:
    """End the session (the cookie is expired)."""
    request.session.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
async def me(user: CurrentUser, request: Request) -> SessionView:
    """Who is logged in, and the CSRF token (for a page that was reloaded)."""
    token = request.session.setdefault(SESSION_CSRF, secrets.token_urlsafe(32))
    return SessionView(user=UserView.of(user), csrf_token=token)


def _retry_after(exc: AccountLocked | TooManyAttempts) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}


__all__ = ["LOGIN_PATH", "LoginBody", "SessionView", "UserView", "router"]
