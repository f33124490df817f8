"""Web accounts on a real migrated SQLite database: passwords, lockout, rate limit, rehash."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.cli import migrate
from callcenter.db.models import User
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services import accounts as accounts_module
from callcenter.services.accounts import (
    AccountLocked,
    AccountService,
    BadCredentials,
    PasswordRejected,
    Principal,
    TooManyAttempts,
    UnknownUser,
)
from callcenter.services.subscribers import add_user
from callcenter.settings import Settings

HERE = "192.0.2.1"


class CountingHash(PasswordHash):
    """Cheap argon2id that counts verifications (the work a login costs)."""

    def __init__(self) -> None:
        super().__init__((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
        self.verified = 0

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        self.verified += 1
        return super().verify(password, hash)

    def verify_and_update(
        self, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        self.verified += 1
        return super().verify_and_update(password, hash)


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("accounts")
    assert migrate(Settings(data_dir=directory)) == 0
    return directory / "callcenter.db"


@pytest_asyncio.fixture
async def sessions(
    template: Path, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    database = tmp_path / "callcenter.db"
    shutil.copyfile(template, database)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with create_sessionmaker(engine).begin() as session:
        await add_user(session, username="amy", role="agent", realm="r", display_name="Amy A")
        await add_user(session, username="sam", role="supervisor", realm="r")
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hasher() -> CountingHash:
    return CountingHash()


@pytest_asyncio.fixture
async def service(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, hasher: CountingHash
) -> AccountService:
    service = AccountService(sessions, clock=clock, hasher=hasher)
    await service.set_password("amy", "amy-password-1")
    await service.set_password("sam", "sam-password-1")
    hasher.verified = 0
    return service


async def stored_hash(sessions: async_sessionmaker[AsyncSession], username: str) -> str | None:
    async with sessions() as session:
        return await session.scalar(select(User.password_hash).where(User.username == username))


# --- passwords -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_passwords_are_argon2id_and_never_stored_plain(
    service: AccountService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    stored = await stored_hash(sessions, "amy")
    assert stored is not None and stored.startswith("$argon2id$")
    assert "amy-password-1" not in stored
    # Salted: the same password twice gives two hashes.
    await service.set_password("sam", "amy-password-1")
    assert await stored_hash(sessions, "sam") != stored


@pytest.mark.asyncio
async def test_the_default_hasher_is_argon2id_with_the_recommended_cost(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await AccountService(sessions).set_password("amy", "amy-password-1")
    stored = await stored_hash(sessions, "amy")
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


@pytest.mark.asyncio
@pytest.mark.parametrize(("password", "why"), [("short", "at least 8"), ("x" * 257, "at most 256")])
async def test_password_rules(service: AccountService, password: str, why: str) -> None:
    with pytest.raises(PasswordRejected, match=why):
        await service.set_password("amy", password)
    await service.set_password("amy", "x" * 256)
    await service.set_password("amy", "eight-ch")


@pytest.mark.asyncio
async def test_set_password_of_nobody(service: AccountService) -> None:
    with pytest.raises(UnknownUser, match="no user 'nobody'"):
        await service.set_password("nobody", "long-enough")


# --- logging in ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_authenticate_returns_the_principal(service: AccountService) -> None:
    principal = await service.authenticate("amy", "amy-password-1", address=HERE)
    assert (principal.username, principal.role, principal.display_name) == (
        "amy",
        "agent",
        "Amy A",
    )
    assert principal.id > 0
    assert principal == await service.principal("amy")
    assert "session_stamp" not in repr(principal)
    with pytest.raises(AttributeError):
        principal.role = "admin"  # type: ignore[misc]


@pytest.mark.asyncio
async def test_every_wrong_login_costs_one_hash_and_says_the_same(
    service: AccountService,
    sessions: async_sessionmaker[AsyncSession],
    hasher: CountingHash,
) -> None:
    async with sessions.begin() as session:
        await add_user(session, username="phone-only", role="agent", realm="r")
        await session.execute(update(User).where(User.username == "sam").values(enabled=False))
    for username, password in (
        ("amy", "wrong-password"),
        ("nobody", "amy-password-1"),  # unknown: checked against a dummy hash
        ("sam", "sam-password-1"),  # disabled
        ("phone-only", "anything-at-all"),  # no web password
        ("x" * 100, "anything-at-all"),  # too long to be a user
    ):
        before = hasher.verified
        with pytest.raises(BadCredentials) as caught:
            await service.authenticate(username, password, address=HERE)
        assert str(caught.value) == "wrong username or password"
        assert hasher.verified == before + 1, username


@pytest.mark.asyncio
async def test_a_stored_hash_pwdlib_cannot_read_is_a_wrong_password(
    service: AccountService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(User).where(User.username == "amy").values(password_hash="md5$abc")
        )
    with pytest.raises(BadCredentials):
        await service.authenticate("amy", "amy-password-1", address=HERE)
    assert await service.principal("amy") is not None  # the row is still a user


@pytest.mark.asyncio
async def test_an_old_hash_is_upgraded_at_login(
    service: AccountService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = await stored_hash(sessions, "amy")
    assert before is not None and "$m=8,t=1,p=1$" in before
    upgrading = AccountService(sessions)  # the default parameters
    principal = await upgrading.authenticate("amy", "amy-password-1", address=HERE)
    after = await stored_hash(sessions, "amy")
    assert after is not None and after.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert principal == await upgrading.principal("amy")  # the stamp of the new hash
    # Nothing to upgrade the second time.
    await upgrading.authenticate("amy", "amy-password-1", address=HERE)
    assert await stored_hash(sessions, "amy") == after


@pytest.mark.asyncio
async def test_principal_follows_the_database(
    service: AccountService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await service.principal("amy")
    assert isinstance(first, Principal)
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.username == "amy").values(role="qa"))
    changed = await service.principal("amy")
    assert changed is not None and changed.role == "qa"
    await service.set_password("amy", "another-password")
    again = await service.principal("amy")
    assert again is not None and again.session_stamp != changed.session_stamp
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.username == "amy").values(enabled=False))
    assert await service.principal("amy") is None
    assert await service.principal("nobody") is None
    assert await service.principal("x" * 1000) is None


# --- lockout -------------------------------------------------------------------------------


async def fail(service: AccountService, username: str = "amy", address: str = HERE) -> None:
    with pytest.raises(BadCredentials):
        await service.authenticate(username, "wrong-password", address=address)


@pytest.mark.asyncio
async def test_five_wrong_passwords_in_15_minutes_lock_for_15_minutes(
    service: AccountService, clock: FakeClock, hasher: CountingHash
) -> None:
    for n in range(5):
        # Each from another address: the lock is per username, whoever tries.
        await fail(service, address=f"192.0.2.{n}")
        clock.now += 100
    before = hasher.verified
    with pytest.raises(AccountLocked) as caught:
        await service.authenticate("amy", "amy-password-1", address=HERE)
    assert caught.value.retry_after == pytest.approx(15 * 60 - 100)
    assert hasher.verified == before  # a locked account costs no hashing
    # Others are not locked.
    await service.authenticate("sam", "sam-password-1", address=HERE)
    clock.now += 15 * 60 - 100
    await service.authenticate("amy", "amy-password-1", address=HERE)


@pytest.mark.asyncio
async def test_failures_older_than_15_minutes_do_not_count(
    service: AccountService, clock: FakeClock
) -> None:
    for _ in range(4):
        await fail(service)
    clock.now += 15 * 60
    for _ in range(4):
        await fail(service)
    await service.authenticate("amy", "amy-password-1", address=HERE)


@pytest.mark.asyncio
async def test_a_good_login_forgets_the_failures(service: AccountService, clock: FakeClock) -> None:
    for _ in range(4):
        await fail(service)
    clock.now += 60  # a new minute for this address
    await service.authenticate("amy", "amy-password-1", address=HERE)
    for _ in range(4):
        await fail(service)
    await service.authenticate("amy", "amy-password-1", address="192.0.2.99")


@pytest.mark.asyncio
async def test_unknown_names_lock_like_known_ones(service: AccountService) -> None:
    for _ in range(5):
        await fail(service, "nobody")
    with pytest.raises(AccountLocked):
        await service.authenticate("nobody", "whatever-it-is", address=HERE)


@pytest.mark.asyncio
async def test_a_new_password_lifts_the_lock(service: AccountService) -> None:
    for _ in range(5):
        await fail(service)
    with pytest.raises(AccountLocked):
        await service.authenticate("amy", "amy-password-1", address=HERE)
    await service.set_password("amy", "a-new-password")
    await service.authenticate("amy", "a-new-password", address=HERE)


# --- rate limit per address ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_ten_failures_a_minute_per_address_and_successes_are_free(
    service: AccountService, clock: FakeClock
) -> None:
    # A whole office behind one address logs in at once: successes do not count.
    for _ in range(30):
        await service.authenticate("sam", "sam-password-1", address=HERE)
    for n in range(10):
        await fail(service, f"user{n}")
    with pytest.raises(TooManyAttempts) as caught:
        await service.authenticate("amy", "amy-password-1", address=HERE)
    assert caught.value.retry_after == pytest.approx(60)
    # Refused attempts are not counted: the wait does not grow.
    clock.now += 59
    with pytest.raises(TooManyAttempts) as caught:
        await service.authenticate("amy", "amy-password-1", address=HERE)
    assert caught.value.retry_after == pytest.approx(1)
    await service.authenticate("amy", "amy-password-1", address="192.0.2.200")
    clock.now += 1
    await service.authenticate("amy", "amy-password-1", address=HERE)


@pytest.mark.asyncio
async def test_throttle_memory_is_bounded(
    service: AccountService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts_module, "MAX_TRACKED", 20)
    for n in range(300):
        await fail(service, f"user{n % 150}", address=f"10.0.{n // 250}.{n % 250}")
        if n % 150 == 149:
            clock.now += 1  # users fail twice, within their window
    assert len(service._attempts._times) <= 20
    assert len(service._failures._times) <= 20
    for n in range(40):
        for _ in range(5):
            await fail(service, f"locked{n}", address=f"10.1.{n}.{_}")
    assert len(service._locked_until) <= 20
    # What was kept still works: the last name locked is locked.
    with pytest.raises(AccountLocked):
        await service.authenticate("locked39", "whatever-it-is", address="10.9.9.9")
