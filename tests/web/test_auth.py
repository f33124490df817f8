"""Logging in and out over HTTP: the session cookie, CSRF, lockout, rate limit, error bodies."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import User
from callcenter.services.accounts import AccountService
from callcenter.web import app as web_app
from callcenter.web.app import SESSION_COOKIE, SESSION_MAX_AGE, create_app
from callcenter.web.deps import CSRF_HEADER, WebDeps

from .conftest import (
    SECRET_KEY,
    FakeClock,
    client_for,
    csrf,
    login,
    make_deps,
    password_of,
)

WRONG = "wrong username or password"
CSRF_REFUSED = "CSRF token missing or wrong"


def session_cookie(answer: httpx.Response) -> str:
    [header] = [h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)]
    return header


# --- logging in ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_login_answers_user_and_token_and_sets_a_strict_httponly_cookie(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/api/auth/login", json={"username": "agent", "password": password_of("agent")}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == {"username": "agent", "role": "agent", "display_name": "agent"}
    assert len(body["csrf_token"]) >= 40
    attributes = [part.strip().lower() for part in session_cookie(answer).split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert f"max-age={SESSION_MAX_AGE}" in attributes
    assert "secure" not in attributes  # plain HTTP here; see the https_only test

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json() == body


@pytest.mark.asyncio
async def test_cookie_is_secure_when_https_only(accounts: AccountService) -> None:
    app = create_app(make_deps(accounts, https_only=True))
    async with client_for(app) as client:
        answer = await client.post(
            "/api/auth/login", json={"username": "qa", "password": password_of("qa")}
        )
    assert answer.status_code == 200
    assert "secure" in [p.strip().lower() for p in session_cookie(answer).split(";")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("agent", "not-the-password"),
        ("nobody", "agent-password-1"),  # unknown user
        ("gone", password_of("gone")),  # disabled: the right password does not help
        ("nopass", "anything-at-all"),  # no web password: SIP only
        ("Agent", password_of("agent")),  # usernames are exact
    ],
)
async def test_wrong_logins_all_get_the_same_401(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    answer = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 401
    assert answer.json() == {"detail": WRONG}
    assert "set-cookie" not in answer.headers
    assert (await client.get("/api/auth/me")).status_code == 401


@pytest.mark.asyncio
async def test_me_without_a_session_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/auth/me")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "not logged in"}


@pytest.mark.asyncio
async def test_passwords_are_stored_as_argon2id(
    accounts: AccountService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        hashes = dict((await session.execute(select(User.username, User.password_hash))).all())
    assert hashes["nopass"] is None
    for username in ("agent", "supervisor", "qa", "admin", "gone"):
        stored = hashes[username]
        assert stored is not None and stored.startswith("$argon2id$")
        assert password_of(username) not in stored


# --- the cookie: signed, rotated, checked against the database -----------------------------


@pytest.mark.asyncio
async def test_a_tampered_or_forged_cookie_is_not_a_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await login(client, "agent")
    value = client.cookies[SESSION_COOKIE]
    payload, _, signature = value.partition(".")
    # The session is readable (signed, not encrypted): become admin and keep the signature.
    data = json.loads(base64.b64decode(payload))
    assert data["user"] == "agent"
    forged = base64.b64encode(json.dumps({**data, "user": "admin"}).encode()).decode()
    # The signature's first character (the last one carries spare base64 bits: changing it
    # may leave the decoded signature as it was).
    at = value.rindex(".") + 1  # payload.timestamp.signature
    flipped = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
    for bad in (f"{forged}.{signature}", flipped, "garbage"):
        async with client_for(app) as other:
            other.cookies.set(SESSION_COOKIE, bad)
            answer = await other.get("/api/auth/me")
            assert answer.status_code == 401, bad
            assert answer.json() == {"detail": "not logged in"}
    async with client_for(app) as other:
        other.cookies.set(SESSION_COOKIE, value)
        assert (await other.get("/api/auth/me")).status_code == 200  # the real one works


@pytest.mark.asyncio
async def test_a_cookie_signed_with_another_key_is_not_a_session(
    accounts: AccountService, client: httpx.AsyncClient
) -> None:
    assert SECRET_KEY != "another-key-" + "y" * 32
    other_app = create_app(WebDeps(accounts=accounts, secret_key="another-key-" + "y" * 32))
    async with client_for(other_app) as other:
        await login(other, "admin")
        client.cookies.set(SESSION_COOKIE, other.cookies[SESSION_COOKIE])
    assert (await client.get("/api/auth/me")).status_code == 401


def test_a_short_secret_key_is_refused(accounts: AccountService) -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        create_app(WebDeps(accounts=accounts, secret_key="short"))


@pytest.mark.asyncio
async def test_login_rotates_the_session(client: httpx.AsyncClient) -> None:
    first = await login(client, "agent")
    first_cookie = client.cookies[SESSION_COOKIE]
    second = await login(client, "qa")
    assert second != first
    assert client.cookies[SESSION_COOKIE] != first_cookie
    me = (await client.get("/api/auth/me")).json()
    assert me == {
        "user": {"username": "qa", "role": "qa", "display_name": "qa"},
        "csrf_token": second,
    }
    # The old token belongs to the old session.
    answer = await client.post("/api/auth/logout", headers=csrf(first))
    assert answer.status_code == 403


@pytest.mark.asyncio
async def test_disabling_a_user_or_changing_its_role_or_password_acts_at_once(
    app: FastAPI,
    accounts: AccountService,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with client_for(app) as a, client_for(app) as b, client_for(app) as c:
        await login(a, "agent")
        await login(b, "qa")
        await login(c, "supervisor")
        async with sessions.begin() as session:
            await session.execute(
                update(User).where(User.username == "agent").values(enabled=False)
            )
            await session.execute(update(User).where(User.username == "qa").values(role="admin"))
        await accounts.set_password("supervisor", "a-brand-new-password")

        answer = await a.get("/api/auth/me")
        assert answer.status_code == 401
        # The dead session's cookie is expired, not just refused.
        assert "expires=thu, 01 jan 1970" in session_cookie(answer).lower()
        assert (await b.get("/api/auth/me")).json()["user"]["role"] == "admin"
        assert (await c.get("/api/auth/me")).status_code == 401
        await login(c, "supervisor", "a-brand-new-password")
        assert (await c.get("/api/auth/me")).status_code == 200


# --- CSRF ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_logout_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    token = await login(client, "supervisor")
    # A non-ASCII token must not crash hmac.compare_digest.
    non_ascii = {CSRF_HEADER.encode(): "é".encode() * 10}
    cases: list[Mapping[str, str] | Mapping[bytes, bytes]] = [
        {},
        csrf("wrong"),
        csrf(token + "x"),
        csrf(""),
        non_ascii,
    ]
    for headers in cases:
        answer = await client.post("/api/auth/logout", headers=headers)
        assert answer.status_code == 403, headers
        assert answer.json() == {"detail": CSRF_REFUSED}
    assert (await client.get("/api/auth/me")).status_code == 200  # still logged in

    answer = await client.post("/api/auth/logout", headers=csrf(token))
    assert answer.status_code == 204
    assert answer.content == b""
    assert "expires=thu, 01 jan 1970" in session_cookie(answer).lower()
    assert (await client.get("/api/auth/me")).status_code == 401
    # Logged out, the token is worth nothing.
    assert (await client.post("/api/auth/logout", headers=csrf(token))).status_code == 401


@pytest.mark.asyncio
async def test_cross_origin_login_is_refused(client: httpx.AsyncClient) -> None:
    body = {"username": "agent", "password": password_of("agent")}
    for origin in ("http://evil.example", "http://testserver:8080", "null"):
        answer = await client.post("/api/auth/login", json=body, headers={"Origin": origin})
        assert answer.status_code == 403, origin
        assert answer.json() == {"detail": "cross-origin login refused"}
    answer = await client.post(
        "/api/auth/login", json=body, headers={"Origin": "http://testserver"}
    )
    assert answer.status_code == 200


# --- lockout and rate limit ----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("username", ["agent", "nobody"])
async def test_five_wrong_passwords_lock_the_username_for_15_minutes(
    client: httpx.AsyncClient, clock: FakeClock, username: str
) -> None:
    wrong = {"username": username, "password": "not-the-password"}
    for _ in range(5):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
        clock.advance(60)
    right = {"username": username, "password": password_of(username)}
    answer = await client.post("/api/auth/login", json=right)
    # Unknown names lock the same way, so a 423 tells nobody whether a user exists.
    assert answer.status_code == 423
    assert answer.json() == {
        "detail": "too many wrong passwords: the account is locked for a while"
    }
    assert 0 < int(answer.headers["retry-after"]) <= 15 * 60
    # Other users are not affected.
    await login(client, "qa")
    clock.advance(int(answer.headers["retry-after"]))
    answer = await client.post("/api/auth/login", json=right)
    assert answer.status_code == (200 if username == "agent" else 401)


@pytest.mark.asyncio
async def test_one_address_may_try_ten_logins_a_minute(app: FastAPI, clock: FakeClock) -> None:
    async with (
        client_for(app, address="192.0.2.7") as client,
        client_for(app, address="192.0.2.8") as neighbour,
    ):
        for n in range(10):
            body = {"username": f"user{n}", "password": "whatever-it-is"}
            assert (await client.post("/api/auth/login", json=body)).status_code == 401
            clock.advance(1)
        answer = await client.post(
            "/api/auth/login", json={"username": "agent", "password": password_of("agent")}
        )
        assert answer.status_code == 429
        assert answer.json() == {"detail": "too many login attempts: try again later"}
        assert int(answer.headers["retry-after"]) == 50
        # Another address is not affected.
        await login(neighbour, "agent")
        clock.advance(50)
        await login(client, "agent")


# --- every error is JSON {"detail": "..."} --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"username": "agent", "password": ', "application/json"),  # malformed JSON
        (b'{"username": "agent"}', "application/json"),  # missing field
        (b'{"username": "agent", "password": "x", "admin": true}', "application/json"),
        (b'{"username": "", "password": "agent-password-1"}', "application/json"),
        (b'{"username": ["agent"], "password": "agent-password-1"}', "application/json"),
        (b"[]", "application/json"),
        (b"username=agent&password=agent-password-1", "application/x-www-form-urlencoded"),
        (b'{"username": "agent", "password": "agent-password-1"}', "text/plain"),
    ],
)
async def test_bad_login_bodies_are_422_with_a_readable_detail(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    answer = await client.post(
        "/api/auth/login", content=content, headers={"Content-Type": content_type}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail
    assert "Traceback" not in answer.text
    assert "agent-password-1" not in answer.text


@pytest.mark.asyncio
async def test_a_huge_password_is_422_and_not_echoed(client: httpx.AsyncClient) -> None:
    password = "p" * 10_000
    answer = await client.post("/api/auth/login", json={"username": "agent", "password": password})
    assert answer.status_code == 422
    assert answer.json() == {"detail": "body.password: String should have at most 256 characters"}
    long_name = await client.post("/api/auth/login", json={"username": "a" * 65, "password": "x"})
    assert long_name.status_code == 422


@pytest.mark.asyncio
async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    huge = b'{"username": "' + b"a" * (1024 * 1024) + b'", "password": "x"}'
    answer = await client.post(
        "/api/auth/login", content=huge, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body over 1048576 bytes"}

    # Without a Content-Length (chunked), counted as it arrives.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"a" * 65536

    answer = await client.post(
        "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body over 1048576 bytes"}


@pytest.mark.asyncio
async def test_unknown_paths_and_methods_are_json(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/nothing-here")
    assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
    answer = await client.get("/api/auth/login")
    assert (answer.status_code, answer.json()) == (405, {"detail": "Method Not Allowed"})


@pytest.mark.asyncio
async def test_an_unexpected_error_is_500_json_without_a_traceback(
    accounts: AccountService,
) -> None:
    app = create_app(make_deps(accounts))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error: the service logged it"}
    assert "secret internals" not in answer.text


# --- headers, pages, docs ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_security_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/auth/me")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.asyncio
async def test_pages_and_static_files_are_public(
    accounts: AccountService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<title>login</title>")
    (static / "agent.html").write_text("<title>agent</title>")
    (static / "app.js").write_text("// js")
    monkeypatch.setattr(web_app, "STATIC_DIR", static)
    async with client_for(create_app(make_deps(accounts))) as client:
        for path, text in (("/", "login"), ("/agent", "agent"), ("/static/app.js", "// js")):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert text in answer.text
        assert (await client.get("/static/missing.js")).json() == {"detail": "Not Found"}
        assert (await client.get("/static/../conftest.py")).status_code == 404
        (static / "agent.html").unlink()
        answer = await client.get("/agent")
        assert (answer.status_code, answer.json()) == (404, {"detail": "page not found"})


@pytest.mark.asyncio
async def test_openapi_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/docs")).status_code == 200
    schema = (await client.get("/api/openapi.json")).json()
    assert {"/api/auth/login", "/api/auth/logout", "/api/auth/me"} <= set(schema["paths"])
    assert "/" not in schema["paths"]
