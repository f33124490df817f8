from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from callcenter.engine.media import MediaClock, RtpPortPool

from ..rtp_peer import HOST, free_even_base


@pytest_asyncio.fixture
async def clock() -> AsyncIterator[MediaClock]:
    media_clock = MediaClock()
    media_clock.start()
    yield media_clock
    await media_clock.stop()


@pytest_asyncio.fixture
async def pool() -> RtpPortPool:
    base = free_even_base(16)
    return RtpPortPool(HOST, base, base + 31)
