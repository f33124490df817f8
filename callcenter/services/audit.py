"""The audit log: who listened to, downloaded, deleted, paused, held, erased or monitored what.

Owns the rows of `audit_log` and the rules of the chain: `AuditLog.append` (the only way an
entry is written), `verify` (walk the whole chain and recompute it), `head` (the last entry's
id and hash, to anchor elsewhere) and `entries` (reading, newest first). Must not know who
may do what (the web layer and the services that act decide that and then call `append`),
recordings, calls or HTTP: a subject is an opaque string such as 'recording:42' or
'call:<call-id>'.

Append-only means this service offers no update and no delete; nothing else in the code base
writes `audit_log`. It does not mean the database prevents it: anyone with write access to the
database can still change rows. The property is tamper-evidence, not prevention. Each entry's
`hash` is SHA-256 over a canonical encoding of its id, time, actor, action, subject, detail and
the previous entry's hash (`entry_hash`; the first entry's `prev_hash` is 64 zeros), so an
edited field, a deleted or inserted entry, or two swapped entries breaks the chain at that
point, and `verify` says where.

What the chain alone cannot show: that the newest entries were cut off (the shorter chain is
still a valid chain), or that someone rewrote every entry from some point on and recomputed
every hash after it (SHA-256 has no secret). Anchoring the head elsewhere closes both: print
`head()` daily (a report, an e-mail, a ticket, a write-once store) and pass a saved head to
`verify(head=...)`, which then fails unless the chain still holds that exact entry.

Appends are serialised twice over: an asyncio.Lock orders the appends of one `AuditLog`, and
each append's transaction reads the last entry (`ORDER BY id DESC LIMIT 1`) and inserts
id = last + 1 explicitly (the table has no sequence). On PostgreSQL the transaction first takes
a transaction-scoped advisory lock (APPEND_LOCK_KEY), so appends from every process queue up
and none collides. On SQLite, two processes that race both try the same id and one of them
fails on the primary key (or the unique hash) instead of forking the chain; it reads the new
last entry and tries again after an exponential, jittered back-off (a loser waits longer each
time, so a busy winner cannot starve it in step), up to APPEND_ATTEMPTS times: about
APPEND_PATIENCE seconds of waiting in the worst case. When an append fails
for good (AuditError, or the database's own error) the caller should not go on with the action
it meant to audit: an action without its entry is what the log exists to rule out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, NamedTuple

from sqlalchemy import String, insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import AuditEntry, utcnow

GENESIS: Final = "0" * 64
# Part of every hashed encoding, so a later change of the encoding can be told apart.
HASH_VERSION: Final = "callcenter.audit/1"

# The actions the contact center writes today. `append` checks an action's form, not this
# list, so a new kind of action needs no change here; list it anyway, for readers.
RECORDING_LISTEN: Final = "recording.listen"
RECORDING_DOWNLOAD: Final = "recording.download"
RECORDING_DELETE: Final = "recording.delete"
RECORDING_PAUSE: Final = "recording.pause"
RECORDING_RESUME: Final = "recording.resume"
LEGAL_HOLD_SET: Final = "legal-hold.set"
LEGAL_HOLD_RELEASED: Final = "legal-hold.released"
ERASURE: Final = "erasure"
MONITOR_LISTEN: Final = "monitor.listen"
MONITOR_WHISPER: Final = "monitor.whisper"
MONITOR_BARGE: Final = "monitor.barge"
MONITOR_LEAVE: Final = "monitor.leave"
KNOWN_ACTIONS: Final = (
    RECORDING_LISTEN,
    RECORDING_DOWNLOAD,
    RECORDING_DELETE,
    RECORDING_PAUSE,
    RECORDING_RESUME,
    LEGAL_HOLD_SET,
    LEGAL_HOLD_RELEASED,
    ERASURE,
    MONITOR_LISTEN,
    MONITOR_WHISPER,
    MONITOR_BARGE,
    MONITOR_LEAVE,
)


def _column_length(name: str) -> int:
    column_type = AuditEntry.__table__.c[name].type
    if not isinstance(column_type, String) or not column_type.length:
        raise TypeError(f"audit_log.{name} is not a bounded string column")
    return column_type.length


MAX_ACTOR: Final = _column_length("actor")
MAX_ACTION: Final = _column_length("action")
MAX_SUBJECT: Final = _column_length("subject")
# The detail's canonical JSON, in bytes: enough for ids, reasons and a few names, not a dump.
MAX_DETAIL_BYTES: Final = 4096
MAX_DETAIL_DEPTH: Final = 8
MAX_LIMIT: Final = 500
VERIFY_BATCH: Final = 500
APPEND_ATTEMPTS: Final = 16
# Back-off before attempt n+1: uniform(0, min(APPEND_BACKOFF_CAP, APPEND_BACKOFF_BASE * 2**n)).
APPEND_BACKOFF_BASE: Final = 0.002
APPEND_BACKOFF_CAP: Final = 0.25
# pg_advisory_xact_lock key: 'audit' in ASCII, so it is recognisable in pg_locks.
APPEND_LOCK_KEY: Final = 0x6175646974

# Dotted lower-case words: 'recording.listen', 'legal-hold.set', 'erasure'.
_ACTION: Final = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)*")
_INT_RANGE: Final = range(-(2**63), 2**63)


def _backoff(attempt: int) -> float:
    return min(APPEND_BACKOFF_CAP, math.ldexp(APPEND_BACKOFF_BASE, attempt))


# The longest an append can wait out a race before AuditError (about 2.5 s).
APPEND_PATIENCE: Final = sum(_backoff(n) for n in range(1, APPEND_ATTEMPTS))


class AuditError(Exception):
    """The audit log could not take an entry (it stayed contended for every attempt)."""


class Head(NamedTuple):
    """The last entry of the chain: what to anchor elsewhere. (0, GENESIS) when empty."""

    id: int
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntryView:
    """One audit entry as read or written; `detail_json` is the canonical JSON text."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail_json: str
    prev_hash: str
    hash: str

    @property
    def detail(self) -> dict[str, object]:
        """A fresh copy of the detail object (changing it changes nothing stored)."""
        value = json.loads(self.detail_json)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    """`ok` when every entry read recomputes to its hash and links to the one before;
    `entries` counts the entries that passed; `first_bad_id` is the id where the chain
    breaks (for a missing entry, the id of the entry found in its place or just past the
    end); `reason` says what broke, or what was checked."""

    ok: bool
    entries: int
    first_bad_id: int | None
    reason: str


def _canonical(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def iso(at: datetime) -> str:
    """`at` as hashed: ISO-8601 in UTC with microseconds ('2026-01-05T09:00:00.000000+00:00')."""
    # Microseconds are what both backends keep; the stored value round-trips exactly.
    return _utc(at).isoformat(timespec="microseconds")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware value")
    return at.astimezone(UTC)


def entry_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, object],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the entry's canonical encoding.

    The encoding is one JSON array, [HASH_VERSION, id, at, actor, action, subject, detail,
    prev_hash], with sorted keys, no spaces and ASCII only: every string is quoted and
    escaped, so no two different entries encode alike (no field can borrow a separator), and
    anyone can recompute it with a JSON library and sha256sum.
    """
    encoded = _canonical([HASH_VERSION, id, iso(at), actor, action, subject, detail, prev_hash])
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def _check_text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters")
    # Refuses control characters (a forged line in a printed log) and lone surrogates (which
    # no database encoding takes).
    if not value.isprintable():
        raise ValueError(f"{name} holds unprintable characters")
    return value


def _check_action(action: object) -> str:
    text = _check_text("action", action, MAX_ACTION)
    if _ACTION.fullmatch(text) is None:
        raise ValueError(f"action {text!r} is not dotted lower-case words ('recording.listen')")
    return text


class _Budget:
    """Counts the values of a detail, so checking a huge one stops early."""

    def __init__(self) -> None:
        self.left = MAX_DETAIL_BYTES


def _plain(value: object, depth: int, budget: _Budget) -> object:
    """`value` as plain JSON data (tuples to lists), or ValueError for anything else."""
    # Every value takes at least one byte of the encoding: past the byte budget, stop.
    budget.left -= 1
    if budget.left < 0:
        raise ValueError(f"detail is larger than {MAX_DETAIL_BYTES} bytes")
    if depth > MAX_DETAIL_DEPTH:
        raise ValueError(f"detail is nested deeper than {MAX_DETAIL_DEPTH}")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value not in _INT_RANGE:
            raise ValueError("detail integers must fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("detail numbers must be finite")
        return float(value)
    if isinstance(value, str):
        return _plain_str(value)
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1, budget) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"detail keys must be strings, not {type(key).__name__}")
            out[_plain_str(key)] = _plain(item, depth + 1, budget)
        return out
    raise ValueError(f"detail holds a {type(value).__name__}, which is not JSON")


def _plain_str(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("detail strings must be valid Unicode (no lone surrogates)") from None
    return str(value)


def check_detail(detail: Mapping[str, object] | None) -> tuple[dict[str, object], str]:
    """The detail as plain JSON data and its canonical text; ValueError when refused."""
    if detail is None:
        return {}, "{}"
    if not isinstance(detail, Mapping):
        raise ValueError(f"detail must be a JSON object, not {type(detail).__name__}")
    plain = _plain(detail, 0, _Budget())
    assert isinstance(plain, dict)
    text = _canonical(plain)
    if len(text) > MAX_DETAIL_BYTES:  # ASCII: characters are bytes
        raise ValueError(f"detail is larger than {MAX_DETAIL_BYTES} bytes")
    return plain, text


def _view(row: AuditEntry) -> AuditEntryView:
    # Anything but an object was not written by this service (verify() reports the entry):
    # shown rather than hidden, wrapped so that `detail` stays an object.
    detail: object = row.detail if isinstance(row.detail, dict) else {"not-an-object": row.detail}
    try:
        detail_json = _canonical(detail)
    except (TypeError, ValueError):
        detail_json = '{"not-an-object":null}'
    return AuditEntryView(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail_json=detail_json,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _recomputed(row: AuditEntry) -> str | None:
    """The hash `row` should carry, or None when its fields cannot be encoded at all."""
    if not isinstance(row.detail, dict):
        return None
    try:
        return entry_hash(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            detail=row.detail,
            prev_hash=row.prev_hash,
        )
    except (TypeError, ValueError, AttributeError):
        return None


def _check_head(head: Head | tuple[int, str]) -> Head:
    saved = Head(*head)
    if isinstance(saved.id, bool) or not isinstance(saved.id, int) or saved.id < 0:
        raise ValueError("a saved head's id is a whole number, 0 for the empty log")
    if not isinstance(saved.hash, str) or re.fullmatch(r"[0-9a-f]{64}", saved.hash) is None:
        raise ValueError("a saved head's hash is 64 lower-case hex digits")
    if saved.id == 0 and saved.hash != GENESIS:
        raise ValueError("the empty log's head is (0, GENESIS)")
    return saved


class AuditLog:
    """The append-only, hash-chained audit log on `audit_log`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        wall: Callable[[], datetime] = utcnow,
        verify_batch: int = VERIFY_BATCH,
    ) -> None:
        if verify_batch < 1:
            raise ValueError("verify_batch must be at least 1")
        self._sessions = sessions
        self._wall = wall
        self._batch = verify_batch
        self._lock = asyncio.Lock()

    async def append(
        self,
        actor: str,
        action: str,
        subject: str,
        detail: Mapping[str, object] | None = None,
    ) -> AuditEntryView:
        """Write one entry at the end of the chain and return it.

        ValueError when an input is out of bounds: actor 1..64 and subject 1..255 printable
        characters, action dotted lower-case words of at most 32, detail a JSON object (string
        keys, finite numbers, 64-bit integers, nesting ≤ 8) of at most 4 KiB canonical JSON.
        AuditError when racing writers took the next id APPEND_ATTEMPTS times in a row.
        """
        actor = _check_text("actor", actor, MAX_ACTOR)
        action = _check_action(action)
        subject = _check_text("subject", subject, MAX_SUBJECT)
        plain, detail_json = check_detail(detail)
        async with self._lock:
            for attempt in range(1, APPEND_ATTEMPTS + 1):
                try:
                    return await self._append_once(actor, action, subject, plain, detail_json)
                except IntegrityError as exc:
                    # Another process took this id (or, on a tampered table, this hash).
                    if attempt == APPEND_ATTEMPTS:
                        raise AuditError(
                            f"no free place at the end of the chain after {attempt} attempts"
                        ) from exc
                    # Jitter, so two writers that collided do not collide again in step.
                    await asyncio.sleep(random.uniform(0, _backoff(attempt)))
        raise AssertionError("unreachable")

    async def _append_once(
        self,
        actor: str,
        action: str,
        subject: str,
        detail: dict[str, object],
        detail_json: str,
    ) -> AuditEntryView:
        async with self._sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(
                    sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY}
                )
            last = (
                await session.execute(
                    select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
                )
            ).first()
            entry_id, prev_hash = (last.id + 1, last.hash) if last is not None else (1, GENESIS)
            # Read inside the transaction, so times follow the order of the chain as closely
            # as the clock allows (verify does not require it: clocks step back).
            at = _utc(self._wall())
            digest = entry_hash(
                id=entry_id,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                detail=detail,
                prev_hash=prev_hash,
            )
            await session.execute(
                insert(AuditEntry).values(
                    id=entry_id,
                    at=at,
                    actor=actor,
                    action=action,
                    subject=subject,
                    detail=detail,
                    prev_hash=prev_hash,
                    hash=digest,
                )
            )
        return AuditEntryView(
            id=entry_id,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            detail_json=detail_json,
            prev_hash=prev_hash,
            hash=digest,
        )

    async def head(self) -> Head:
        """The last entry's id and hash (0 and GENESIS for an empty log): print it daily, or
        store it where the database's writers cannot, and pass it to `verify(head=...)`."""
        async with self._sessions() as session:
            last = (
                await session.execute(
                    select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
                )
            ).first()
        return Head(0, GENESIS) if last is None else Head(last.id, last.hash)

    async def verify(self, *, head: Head | tuple[int, str] | None = None) -> VerifyResult:
        """Walk the whole chain in id order, `verify_batch` entries per query (memory stays
        bounded), recomputing every hash and checking every link and that ids run 1, 2, 3 …

        Stops at the first break. With `head` (a saved `head()`), the chain must also still
        hold that entry with that hash: without it, a cut-off tail goes unnoticed.
        """
        saved = None if head is None else _check_head(head)
        expected_id, expected_prev, checked = 1, GENESIS, 0
        while True:
            # Keyset paging: each batch starts after the last id checked. The first has no
            # lower bound, so an entry moved to id 0 or below is met, not skipped.
            query = select(AuditEntry).order_by(AuditEntry.id).limit(self._batch)
            if checked:
                query = query.where(AuditEntry.id > expected_id - 1)
            async with self._sessions() as session:
                try:
                    rows = (await session.scalars(query)).all()
                except (TypeError, ValueError) as exc:  # a value the type cannot read back
                    return VerifyResult(
                        ok=False,
                        entries=checked,
                        first_bad_id=expected_id,
                        reason=f"an entry from id {expected_id} on cannot be read: {exc}",
                    )
            for row in rows:
                broken = self._check(row, expected_id, expected_prev)
                if broken is not None:
                    return VerifyResult(
                        ok=False, entries=checked, first_bad_id=row.id, reason=broken
                    )
                if saved is not None and row.id == saved.id and row.hash != saved.hash:
                    return VerifyResult(
                        ok=False,
                        entries=checked,
                        first_bad_id=row.id,
                        reason=f"entry {row.id} is not the saved head: rewritten from there on"
                        " or before",
                    )
                checked += 1
                expected_id, expected_prev = row.id + 1, row.hash
            if len(rows) < self._batch:
                break
        if saved is not None and saved.id >= expected_id:
            return VerifyResult(
                ok=False,
                entries=checked,
                first_bad_id=expected_id,
                reason=f"the chain ends at id {expected_id - 1}, before the saved head"
                f" {saved.id}: entries were removed from the end",
            )
        anchored = "" if saved is None else f", saved head {saved.id} present"
        return VerifyResult(
            ok=True,
            entries=checked,
            first_bad_id=None,
            reason=f"{checked} entries, every hash and link intact{anchored}",
        )

    @staticmethod
    def _check(row: AuditEntry, expected_id: int, expected_prev: str) -> str | None:
        if row.id < expected_id:
            return f"entry id {row.id} is out of sequence (expected {expected_id})"
        if row.id > expected_id:
            missing = (
                f"entry {expected_id} is missing"
                if row.id == expected_id + 1
                else f"entries {expected_id}..{row.id - 1} are missing"
            )
            return f"{missing} (found id {row.id} after {expected_id - 1})"
        if row.prev_hash != expected_prev:
            return (
                f"entry {row.id}'s prev_hash does not match the hash of entry {row.id - 1}"
                if row.id > 1
                else "entry 1's prev_hash is not the genesis value"
            )
        recomputed = _recomputed(row)
        if recomputed is None:
            return f"entry {row.id} cannot be encoded: a field holds a value never written"
        if recomputed != row.hash:
            return f"entry {row.id} does not match its hash: a field was changed"
        return None

    async def entries(
        self,
        subject: str | None = None,
        actor: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntryView]:
        """Entries newest first, optionally of one subject and/or one actor; page on with
        `before_id` = the last id returned. `limit` is 1..MAX_LIMIT (ValueError beyond)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}")
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(AuditEntry.subject == _check_text("subject", subject, MAX_SUBJECT))
        if actor is not None:
            query = query.where(AuditEntry.actor == _check_text("actor", actor, MAX_ACTOR))
        if before_id is not None:
            if isinstance(before_id, bool) or not isinstance(before_id, int) or before_id < 1:
                raise ValueError("before_id must be a positive id")
            query = query.where(AuditEntry.id < before_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_view(row) for row in rows]
