"""Users with SIP credentials and stored bindings, on a real migrated SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.cli import migrate
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.subscribers import SqlSubscriberDirectory, SubscriberError, add_user
from callcenter.settings import Settings
from callcenter.sip.digest import compute_ha1
from callcenter.sip.registrar import Binding, Source


@pytest_asyncio.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    settings = Settings(data_dir=tmp_path)
    # migrate() runs its own event loop (Alembic's async env): give it a thread.
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.mark.asyncio
async def test_sip_password_is_stored_as_ha1_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        user = await add_user(
            session, username="1001", role="agent", realm="pbx", sip_password="correct horse"
        )
    assert user.sip_ha1_md5 == compute_ha1("1001", "pbx", "correct horse", "MD5")
    assert user.sip_ha1_sha256 == compute_ha1("1001", "pbx", "correct horse", "SHA-256")
    credentials = await SqlSubscriberDirectory(sessions).credentials("1001")
    assert credentials is not None and credentials.ha1("SHA-256") == user.sip_ha1_sha256
    assert credentials.ha1("MD5-sess") == user.sip_ha1_md5
    assert await SqlSubscriberDirectory(sessions).credentials("nobody") is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("username", "role", "password"),
    [
        ("a b", "agent", None),
        ("x@y", "agent", None),
        ("ok", "boss", None),
        ("ok", "agent", "short"),
    ],
)
async def test_bad_users_are_refused(
    sessions: async_sessionmaker[AsyncSession], username: str, role: str, password: str | None
) -> None:
    async with sessions.begin() as session:
        with pytest.raises(SubscriberError):
            await add_user(
                session, username=username, role=role, realm="pbx", sip_password=password
            )


@pytest.mark.asyncio
async def test_duplicate_user_and_user_without_sip(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await add_user(session, username="qa1", role="qa", realm="pbx")
        with pytest.raises(SubscriberError):
            await add_user(session, username="qa1", role="qa", realm="pbx")
    # A user without a SIP password cannot register a phone.
    assert await SqlSubscriberDirectory(sessions).credentials("qa1") is None


@pytest.mark.asyncio
async def test_bindings_round_trip_and_replace(sessions: async_sessionmaker[AsyncSession]) -> None:
    directory = SqlSubscriberDirectory(sessions)
    first = Binding(
        aor="sip:1001@pbx",
        contact="sip:1001@127.0.0.1:5070;transport=udp",
        expires_at=2_000_000_000.0,
        call_id="c1",
        cseq=7,
        source=Source("127.0.0.1", 5070, "UDP"),
        q=0.5,
        instance="<urn:uuid:00000000-0000-0000-0000-000000000001>",
        reg_id="1",
    )
    second = Binding(
        aor="sip:1001@pbx",
        contact="sip:1001@127.0.0.1:5080",
        expires_at=2_000_000_100.0,
        call_id="c2",
        cseq=1,
        source=Source("127.0.0.1", 5080, "TCP"),
    )
    await directory.save_bindings("sip:1001@pbx", [first, second])
    assert sorted(await directory.load_bindings(), key=lambda b: b.contact) == [first, second]
    await directory.save_bindings("sip:1001@pbx", [second])
    assert list(await directory.load_bindings()) == [second]
    await directory.save_bindings("sip:1001@pbx", [])
    assert list(await directory.load_bindings()) == []
