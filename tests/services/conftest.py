"""Fixtures of the services tests: `sessions`, a migrated database per test (a copy of one
migrated template, since migrating is slow) holding a qa reviewer or two, a supervisor, an
administrator and an agent. Modules with their own `template` fixture keep theirs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.cli import migrate
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.subscribers import add_user
from callcenter.settings import Settings


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings(data_dir=tmp_path_factory.mktemp("qa-template"))
    assert migrate(settings) == 0
    return settings.data_dir / "callcenter.db"


@pytest_asyncio.fixture
async def sessions(
    template: Path, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    target = tmp_path / "callcenter.db"
    shutil.copyfile(template, target)
    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{target}")
    maker = create_sessionmaker(engine)
    async with maker.begin() as session:
        for name, role in (
            ("quinn", "qa"),
            ("quentin", "qa"),
            ("sam", "supervisor"),
            ("ada", "admin"),
            ("amy", "agent"),
        ):
            await add_user(session, username=name, role=role, realm="test")
    yield maker
    await engine.dispose()
