"""Alembic migrations against real SQLite files: up, down, up again; schema equals the models.

Migrations run in a worker thread because migrations/env.py starts its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.cli import alembic_config, database_heads
from callcenter.db.models import ROLES, Base, User
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def config(settings: Settings) -> Config:
    return alembic_config(settings)


@pytest_asyncio.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def migrated(config: Config, engine: AsyncEngine) -> AsyncEngine:
    await asyncio.to_thread(command.upgrade, config, "head")
    return engine


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


@pytest.mark.asyncio
async def test_down_to_base_and_up_again(config: Config, engine: AsyncEngine) -> None:
    head = ScriptDirectory.from_config(config).get_heads()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await database_heads(engine) == tuple(head)
    assert "users" in await table_names(engine)

    await asyncio.to_thread(command.downgrade, config, "base")
    assert await database_heads(engine) == ()
    assert await table_names(engine) == {"alembic_version"}

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await database_heads(engine) == tuple(head)


@pytest.mark.asyncio
async def test_every_revision_downgrades(config: Config, engine: AsyncEngine) -> None:
    # Step one revision at a time so each downgrade() is exercised on its own.
    revisions = list(ScriptDirectory.from_config(config).walk_revisions())
    await asyncio.to_thread(command.upgrade, config, "head")
    for _ in revisions:
        await asyncio.to_thread(command.downgrade, config, "-1")
    assert await database_heads(engine) == ()


@pytest.mark.asyncio
async def test_models_match_migrated_schema(migrated: AsyncEngine) -> None:
    def diff(sync: Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with migrated.connect() as connection:
        assert await connection.run_sync(diff) == []


@pytest.mark.asyncio
async def test_constraints_are_named_by_the_convention(migrated: AsyncEngine) -> None:
    def names(sync: Connection) -> tuple[str | None, list[str | None], list[str | None]]:
        inspector = inspect(sync)
        return (
            inspector.get_pk_constraint("users")["name"],
            [c["name"] for c in inspector.get_unique_constraints("users")],
            [c["name"] for c in inspector.get_check_constraints("users")],
        )

    async with migrated.connect() as connection:
        assert await connection.run_sync(names) == (
            "pk_users",
            ["uq_users_username"],
            ["ck_users_role"],
        )


@pytest.mark.asyncio
async def test_role_check_accepts_known_roles_and_rejects_others(migrated: AsyncEngine) -> None:
    sessions = create_sessionmaker(migrated)
    async with sessions() as session, session.begin():
        session.add_all(User(username=f"u-{role}", role=role) for role in ROLES)
    with pytest.raises(IntegrityError, match="ck_users_role"):
        async with sessions() as session, session.begin():
            session.add(User(username="mallory", role="root"))


@pytest.mark.asyncio
async def test_username_is_unique(migrated: AsyncEngine) -> None:
    sessions = create_sessionmaker(migrated)
    async with sessions() as session, session.begin():
        session.add(User(username="alice", role="agent"))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with sessions() as session, session.begin():
            session.add(User(username="alice", role="qa"))


@pytest.mark.asyncio
async def test_defaults_from_the_orm(migrated: AsyncEngine) -> None:
    sessions = create_sessionmaker(migrated)
    async with sessions() as session, session.begin():
        session.add(User(username="bob", role="supervisor"))
    async with sessions() as session:
        bob = (await session.execute(select(User).where(User.username == "bob"))).scalar_one()
    assert bob.enabled is True
    assert bob.display_name == ""
    assert bob.password_hash is None and bob.sip_ha1_md5 is None and bob.sip_ha1_sha256 is None
    assert bob.created_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - bob.created_at) < timedelta(minutes=1)


@pytest.mark.asyncio
async def test_server_defaults_from_raw_sql(migrated: AsyncEngine) -> None:
    # Data migrations and ad-hoc SQL insert without the ORM's Python defaults.
    async with migrated.begin() as connection:
        await connection.execute(text("INSERT INTO users (username, role) VALUES ('carol', 'qa')"))
    async with create_sessionmaker(migrated)() as session:
        carol = (await session.execute(select(User).where(User.username == "carol"))).scalar_one()
    assert carol.enabled is True
    assert carol.created_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - carol.created_at) < timedelta(minutes=1)


@pytest.mark.asyncio
async def test_created_at_round_trips_as_utc(migrated: AsyncEngine) -> None:
    sessions = create_sessionmaker(migrated)
    paris = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with sessions() as session, session.begin():
        session.add(User(username="dave", role="admin", created_at=paris))
    async with sessions() as session:
        dave = (await session.execute(select(User).where(User.username == "dave"))).scalar_one()
    assert dave.created_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert dave.created_at.tzinfo is UTC

    with pytest.raises(StatementError, match="naive datetime"):
        async with sessions() as session, session.begin():
            session.add(User(username="erin", role="admin", created_at=datetime(2024, 6, 1)))


@pytest.mark.asyncio
async def test_sqlite_pragmas(migrated: AsyncEngine) -> None:
    async with migrated.connect() as connection:
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
