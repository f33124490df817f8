"""Alembic environment (async template): runs migrations through an async engine via run_sync.

The URL comes from `callcenter.settings` (CALLCENTER_DATABASE_URL / CALLCENTER_DATA_DIR);
`callcenter migrate` passes its own Settings in `config.attributes["settings"]`.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from callcenter.db.models import Base, UTCDateTime
from callcenter.settings import Settings

config = context.config

# The plain `alembic` command configures logging from alembic.ini; `callcenter migrate` has
# already set up the service's logging and asks us not to replace it.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
settings: Settings = config.attributes.get("settings") or Settings()


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Autogenerate would import callcenter.db.models into the revision; revisions must stay
    # frozen even when the model module changes, so render the plain SQLAlchemy type.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) instead of touching a database."""
    context.configure(
        url=settings.database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead. It is a
        # plain ALTER on PostgreSQL, so the same scripts serve both.
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # Deliberately not callcenter.db.session.create_engine: that one turns SQLite foreign keys
    # on, and a batch rebuild drops and recreates tables, which with foreign keys on would
    # cascade deletes into (or fail on) every table that references the rebuilt one.
    engine = create_async_engine(settings.database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
