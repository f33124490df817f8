"""Voicemail: messages left by callers, kept as recordings attached to a box.

Owns taking a message on an answered call (`record`: greeting, beep, recording, goodbye), the
file under `recordings_dir/voicemail/<box>/`, its row in `voicemail_messages`, and reading the
boxes back. The disk failing (full, not writable) never breaks the call: it is logged as an
error, counted in `failures`, the caller still hears the goodbye and no message is kept. Each
recording runs in a task the service owns, so a caller of `record` that is cancelled does not
cut the message short; `stop()` ends the recordings in progress (kept, calls hung up) and
awaits them. Must not open sockets or touch RTP: the engine's `Calls` and legs do that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import VoicemailMessage
from callcenter.engine.calls import Call, Calls
from callcenter.engine.media import Prompt, PromptError
from callcenter.media import SAMPLE_RATE, ToneGenerator
from callcenter.services.audiofiles import ClosedWav, WavFileWriter
from callcenter.services.ivr.prompts import PromptLibrary

from .session import VoicemailPrompts, VoicemailSession

log = logging.getLogger(__name__)

DEFAULT_GREETING: Final = (
    "text:Please leave your message after the tone. Press the hash key when you are done."
)
DEFAULT_GOODBYE: Final = "text:Thank you. Goodbye."
DEFAULT_MAX_SECONDS: Final = 120.0
MAX_MAX_SECONDS: Final = 3600.0
MIN_MESSAGE_SECONDS: Final = 0.5
"""Shorter messages (a caller who hangs up at the beep) are not kept."""

BEEP_HZ: Final = 1000.0
BEEP_SECONDS: Final = 0.25
BEEP_DBFS: Final = -10.0

SUBDIR: Final = "voicemail"
_BOX: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_CALLER: Final = 64
MAX_CALL_ID: Final = 255

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_box(name: str) -> bool:
    """1 to 64 of [A-Za-z0-9_.-], and not `.` or `..` (the name is a directory)."""
    return _BOX.fullmatch(name) is not None and name not in (".", "..")


def check_box(name: str) -> str:
    if not is_box(name):
        raise ValueError(f"bad voicemail box name {name[:70]!r}: 1-64 of A-Z a-z 0-9 _ . -")
    return name


def beep() -> Prompt:
    """The tone after the greeting: 1 kHz for 250 ms."""
    count = round(BEEP_SECONDS * SAMPLE_RATE)
    frames = ToneGenerator((BEEP_HZ,), BEEP_DBFS).frames(-(-count // 160))
    return Prompt(np.ascontiguousarray(frames.reshape(-1)[:count]), name="<beep>")


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailRecord:
    """One message: `path` is relative to the recordings directory (POSIX spelling)."""

    id: int
    box: str
    call_id: str
    caller: str
    path: str
    duration_seconds: float
    sha256: str
    size_bytes: int
    created_at: dt.datetime
    heard: bool = False

    @classmethod
    def of(cls, row: VoicemailMessage) -> VoicemailRecord:
        return cls(
            id=row.id,
            box=row.box,
            call_id=row.call_id,
            caller=row.caller,
            path=row.path,
            duration_seconds=row.duration_seconds,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            created_at=row.created_at,
            heard=row.heard,
        )


class VoicemailService:
    """Voicemail boxes over `calls` (media), `sessions` (rows) and `recordings_dir` (files)."""

    def __init__(
        self,
        calls: Calls,
        sessions: async_sessionmaker[AsyncSession],
        recordings_dir: Path,
        library: PromptLibrary,
        *,
        greeting: str = DEFAULT_GREETING,
        goodbye: str = DEFAULT_GOODBYE,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        if not 0 < max_seconds <= MAX_MAX_SECONDS:
            raise ValueError(f"max_seconds must be in (0, {MAX_MAX_SECONDS:.0f}]")
        self.calls = calls
        self.sessions = sessions
        self.recordings_dir = recordings_dir
        self.library = library
        self.greeting = greeting
        self.goodbye = goodbye
        self.max_seconds = max_seconds
        self.clock = clock
        self.failures = 0
        """Messages lost to the disk or the database (each one logged as an error)."""
        self.beep = beep()
        self.recordings: set[VoicemailSession] = set()
        self._tasks: set[asyncio.Task[VoicemailRecord | None]] = set()
        self._stopping = False

    # --- the Service --------------------------------------------------------------------------

    async def start(self) -> None:
        """Render the prompts now, so that the first caller does not wait for espeak-ng."""
        self._stopping = False
        await self._prompts()

    async def stop(self) -> None:
        """End the recordings in progress (what was recorded is kept) and await them."""
        self._stopping = True
        for session in list(self.recordings):
            session.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def listening(self) -> str:
        return (
            f"Voicemail: messages in {self.recordings_dir / SUBDIR} "
            f"(up to {self.max_seconds:.0f} s each)"
        )

    @property
    def active(self) -> int:
        """Messages being taken (greeting to the row written)."""
        return len(self._tasks)

    # --- taking a message ---------------------------------------------------------------------

    async def record(
        self, call: Call, box: str, *, call_id: str, caller: str
    ) -> VoicemailRecord | None:
        """Take a message on `call` (answered; its leg free: `Calls.release_media`) for `box`,
        and hang up. The message kept, or None: the caller hung up before saying anything
        (under MIN_MESSAGE_SECONDS), or the disk failed. Raises ValueError for a bad box."""
        check_box(box)
        if self._stopping:
            log.warning("call %s: voicemail is stopping: hanging up", call_id)
            self.calls.hang_up(call.dialog_id)
            return None
        task = asyncio.get_running_loop().create_task(
            self._record(call, box, call_id=call_id[:MAX_CALL_ID], caller=caller[:MAX_CALLER])
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)
        # A cancelled caller (the IVR's task, the engine stopping) leaves the message to us.
        return await asyncio.shield(task)

    def _done(self, task: asyncio.Task[VoicemailRecord | None]) -> None:
        self._tasks.discard(task)
        # Said here too: the caller of `record` may have been cancelled and never hear of it.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("voicemail recording failed", exc_info=exc)

    async def _record(
        self, call: Call, box: str, *, call_id: str, caller: str
    ) -> VoicemailRecord | None:
        prompts = await self._prompts()
        created = self.clock().astimezone(dt.UTC)
        relative = PurePosixPath(
            SUBDIR, box, f"{created:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}.wav"
        )
        path = self.recordings_dir / relative
        writer: WavFileWriter | None
        try:
            writer = await asyncio.to_thread(WavFileWriter.create, path)
        except OSError as exc:
            self._failed(call_id, path, exc)
            writer = None
        session = VoicemailSession(
            self.calls, call, prompts, writer, max_seconds=self.max_seconds, call_id=call_id
        )
        self.recordings.add(session)
        try:
            try:
                session.begin()
            except BaseException:
                if writer is not None:
                    await asyncio.to_thread(writer.discard)
                raise
            await session.recorded
            record = None
            if writer is not None:
                record = await self._keep(
                    session, writer, box=box, call_id=call_id, caller=caller, created=created
                )
                if record is not None:
                    log.info(
                        "call %s: voicemail for %s kept: %s (%.1f s)",
                        call_id,
                        box,
                        record.path,
                        record.duration_seconds,
                    )
            await session.ended
            return record
        finally:
            self.recordings.discard(session)

    async def _keep(
        self,
        session: VoicemailSession,
        writer: WavFileWriter,
        *,
        box: str,
        call_id: str,
        caller: str,
        created: dt.datetime,
    ) -> VoicemailRecord | None:
        """The recording is over: finish the file, and keep it with its row, or drop it."""
        recorder = session.recorder
        closed: ClosedWav | None = None
        error: OSError | None = None
        if recorder is not None:
            await recorder.finish()
            error = recorder.error
        if error is None:
            try:
                closed = await asyncio.to_thread(writer.close)
            except OSError as exc:
                error = exc
        if error is not None or closed is None:
            await asyncio.to_thread(writer.discard)
            if error is not None:
                self._failed(call_id, writer.path, error)
            return None
        if closed.duration_seconds < MIN_MESSAGE_SECONDS:
            log.info(
                "call %s: voicemail for %s too short (%.2f s): not kept",
                call_id,
                box,
                closed.duration_seconds,
            )
            await asyncio.to_thread(writer.discard)
            return None
        row = VoicemailMessage(
            box=box,
            call_id=call_id,
            caller=caller,
            path=writer.path.relative_to(self.recordings_dir).as_posix(),
            duration_seconds=closed.duration_seconds,
            sha256=closed.sha256,
            size_bytes=closed.size_bytes,
            heard=False,
            created_at=created,
        )
        try:
            async with self.sessions.begin() as db:
                db.add(row)
                await db.flush()
                return VoicemailRecord.of(row)
        except SQLAlchemyError as exc:
            # The file stays: the message is on disk, only its index entry is missing.
            self.failures += 1
            log.error(
                "call %s: voicemail for %s: no database row for %s: %s",
                call_id,
                box,
                writer.path,
                exc,
            )
            return None

    def _failed(self, call_id: str, path: Path, exc: OSError) -> None:
        self.failures += 1
        log.error("call %s: voicemail message lost: cannot write %s: %s", call_id, path, exc)

    async def _prompts(self) -> VoicemailPrompts:
        greeting, goodbye = await asyncio.gather(
            self._prompt(self.greeting), self._prompt(self.goodbye)
        )
        return VoicemailPrompts(greeting=greeting, beep=self.beep, goodbye=goodbye)

    async def _prompt(self, name: str) -> Prompt:
        """A prompt, or silence when it cannot be had (no espeak-ng, a missing file): the beep
        alone still tells the caller when to speak."""
        try:
            return await self.library.load(name)
        except PromptError as exc:
            log.error("voicemail prompt %s unavailable: %s", name[:60], exc)
            return Prompt(np.zeros(0, dtype=np.int16), name="<silence>")

    # --- the boxes ----------------------------------------------------------------------------

    async def messages(self, box: str) -> list[VoicemailRecord]:
        """The messages of `box`, newest first."""
        check_box(box)
        query = (
            select(VoicemailMessage)
            .where(VoicemailMessage.box == box)
            .order_by(VoicemailMessage.created_at.desc(), VoicemailMessage.id.desc())
        )
        async with self.sessions() as db:
            return [VoicemailRecord.of(row) for row in (await db.scalars(query)).all()]

    async def mark_heard(self, message_id: int) -> bool:
        """Mark a message heard; False when there is no such message."""
        statement = (
            update(VoicemailMessage)
            .where(VoicemailMessage.id == message_id)
            .values(heard=True)
            .returning(VoicemailMessage.id)
        )
        async with self.sessions.begin() as db:
            return (await db.execute(statement)).first() is not None
