"""The web app over a real migrated SQLite database, with one user per role.

The database is migrated once per test session and copied for each test (migrating takes far
longer than a test). Passwords are hashed with cheap argon2id parameters: the hashes are still
`$argon2id$`, and tests/services/test_accounts.py covers the real parameters.

When `WebDeps` grows required fields (the agent desk, customers, ...), fill them in
`make_deps` below: every web test builds its app there.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import ROLES, User
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.accounts import AccountService
from callcenter.services.subscribers import add_user
from callcenter.settings import Settings
from callcenter.web.app import create_app
from callcenter.web.deps import CSRF_HEADER, WebDeps

ALEMBIC_INI: Final = Path(__file__).resolve().parents[2] / "alembic.ini"
SECRET_KEY: Final = "test-secret-key-" + "x" * 32
BASE_URL: Final = "http://testserver"
# The smallest argon2id parameters: microseconds instead of a tenth of a second per hash.
CHEAP_HASH: Final = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))


def password_of(username: str) -> str:
    return f"{username}-password-1"


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_deps(accounts: AccountService, *, https_only: bool = False) -> WebDeps:
    return WebDeps(accounts=accounts, secret_key=SECRET_KEY, https_only=https_only)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template")
    config = Config(ALEMBIC_INI)
    config.attributes["settings"] = Settings(data_dir=directory)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    return directory / "callcenter.db"


@pytest_asyncio.fixture
async def sessions(
    migrated_template: Path, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    database = tmp_path / "callcenter.db"
    shutil.copyfile(migrated_template, database)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def accounts(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> AccountService:
    """The service with one user per role (username = role), a disabled agent and an agent
    without a web password."""
    service = AccountService(sessions, clock=clock, hasher=CHEAP_HASH)
    async with sessions.begin() as session:
        for role in ROLES:
            await add_user(session, username=role, role=role, realm="test", display_name=role)
        await add_user(session, username="gone", role="agent", realm="test")
        await add_user(session, username="nopass", role="agent", realm="test")
    for username in (*ROLES, "gone"):
        await service.set_password(username, password_of(username))
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.username == "gone").values(enabled=False))
    return service


@pytest.fixture
def app(accounts: AccountService) -> FastAPI:
    return create_app(make_deps(accounts))


def client_for(app: FastAPI, *, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str | None = None) -> str:
    """Log `client` in; its cookie jar keeps the session. Returns the CSRF token."""
    answer = await client.post(
        "/api/auth/login",
        json={"username": username, "password": password or password_of(username)},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["csrf_token"]
    assert isinstance(token, str)
    return token


def csrf(token: str) -> dict[str, str]:
    return {CSRF_HEADER: token}


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """A client logged in as `role`, with its CSRF token."""

    role: str
    client: httpx.AsyncClient
    token: str


@pytest_asyncio.fixture
async def logged_in(app: FastAPI) -> AsyncIterator[dict[str, LoggedIn]]:
    """One logged-in client per role, by role."""
    # A separate address each: the logins must not use up one address's allowance.
    clients = {role: client_for(app, address=f"10.0.0.{n}") for n, role in enumerate(ROLES, 1)}
    try:
        yield {role: LoggedIn(role, c, await login(c, role)) for role, c in clients.items()}
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item (`rep_call`): fixtures that outlive the test
    (the browser pages) look at it to save screenshots of a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
