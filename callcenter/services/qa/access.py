"""Who may see which recordings: QA reviewers see the queues assigned to them, and no more.

Owns the assignments (an administrator's list of queues per QA user), the `visible_queues`
rule (supervisors and administrators see every queue: None; a reviewer the set assigned, which
may be empty), and loading one recording only if the viewer may see it. A recording the viewer
may not see is reported exactly like one that does not exist, so ids leak nothing.
Must not know HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import QaAssignment, Recording, User
from callcenter.services.recordings.catalogue import live_recording

from .errors import QaInvalid, QaNotFound

RESTRICTED_ROLE: Final = "qa"
MAX_QUEUES: Final = 500
QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class Assignments:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def visible_queues(self, username: str, role: str) -> frozenset[str] | None:
        """None: every queue (supervisor, admin); else the reviewer's assigned queues."""
        if role != RESTRICTED_ROLE:
            return None
        async with self._sessions() as session:
            rows = await session.scalars(
                select(QaAssignment.queue).where(QaAssignment.username == username)
            )
            return frozenset(rows)

    async def all(self) -> dict[str, list[str]]:
        """Every QA user, with their queues (sorted; [] for a reviewer with none)."""
        async with self._sessions() as session:
            users = await session.scalars(
                select(User.username).where(User.role == RESTRICTED_ROLE).order_by(User.username)
            )
            out: dict[str, list[str]] = {name: [] for name in users}
            rows = await session.execute(
                select(QaAssignment.username, QaAssignment.queue).order_by(QaAssignment.queue)
            )
            for username, queue in rows:
                if username in out:
                    out[username].append(queue)
        return out

    async def assign(self, username: str, queues: Iterable[str]) -> list[str]:
        """Replace a reviewer's queues; the sorted list stored."""
        wanted = sorted(set(queues))
        if len(wanted) > MAX_QUEUES:
            raise QaInvalid(f"at most {MAX_QUEUES} queues")
        for queue in wanted:
            if not QUEUE_NAME.fullmatch(queue):
                raise QaInvalid(f"{queue!r} is not a queue name")
        async with self._sessions() as session:
            role = await session.scalar(select(User.role).where(User.username == username))
            if role is None:
                raise QaNotFound(f"no user {username!r}")
            if role != RESTRICTED_ROLE:
                raise QaInvalid(f"{username} is a {role}: only qa users are given queues")
            await session.execute(delete(QaAssignment).where(QaAssignment.username == username))
            session.add_all(QaAssignment(username=username, queue=q) for q in wanted)
            await session.commit()
        return wanted


async def visible_recording(
    session: AsyncSession, recording_id: int, queues: frozenset[str] | None
) -> Recording:
    """The recording, if it exists, is not deleted and the viewer may see it; else QaNotFound."""
    recording = await live_recording(session, recording_id, queues)
    if recording is None:
        raise QaNotFound("no such recording")
    return recording
