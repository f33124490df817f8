"""Async engine and session factories for a database URL.

Owns connection set-up (SQLite pragmas included), not the choice of URL: the composition root
passes `Settings.database_url` in. Whoever creates an engine disposes of it (`await
engine.dispose()`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite every connection enforces foreign keys and uses WAL."""
    engine = create_async_engine(url, **kwargs)
    if make_url(url).get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: an async session cannot lazily reload attributes after commit,
    # so objects stay readable once their transaction is over.
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # SQLite leaves foreign keys off per connection unless asked. WAL lets the web pages read
    # while the engine writes call records; it persists in the file, but asking again is cheap
    # and covers files created by something else. Both pragmas are no-ops inside a
    # transaction, and none is open yet at connect time.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()
