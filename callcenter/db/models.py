"""SQLAlchemy 2 typed declarative models: the schema, and nothing else.

Owns table and column definitions and the constraints the database itself enforces. Business
rules (who may log in, what a role may do, how SIP credentials are derived) live in
`callcenter.services`; this module must not know about them. Every change here ships with a
hand-checked Alembic migration in `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names must be deterministic so that migrations can name (and later drop or alter)
# them identically on SQLite and PostgreSQL; batch mode on SQLite needs names to rebuild tables.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES: Final = ("agent", "supervisor", "qa", "admin")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite stores no offset and hands back naive values; PostgreSQL's timestamptz hands back
    aware ones. Naive input is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """Anyone who logs in to the web pages or registers a SIP phone."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN (" + ", ".join(f"'{role}'" for role in ROLES) + ")",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="", server_default="")
    role: Mapped[str] = mapped_column(String(16))
    # A PHC string (argon2id) written by the web layer; None = no web login.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # RFC 7616 HA1 = H(username:realm:password), hex; what a registrar needs to check a digest
    # without ever storing the SIP password. None = this user registers no phone.
    sip_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The Python default serves the ORM (async sessions cannot lazily re-read a server
    # default); the server default serves raw SQL and data migrations.
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class SipBinding(Base):
    """A registered contact of a SIP phone (RFC 3261 §10): where calls to the user go.

    Kept so registrations survive a restart. The registrar in `callcenter.sip` decides what a
    REGISTER does; this row only stores its result.
    """

    __tablename__ = "sip_bindings"
    __table_args__ = (UniqueConstraint("aor", "contact"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aor: Mapped[str] = mapped_column(String(255), index=True)
    # The Contact URI as registered, parameters and escaped headers verbatim.
    contact: Mapped[str] = mapped_column(String(1024))
    # Wall-clock seconds since the epoch: the binding is gone after this instant.
    expires_at: Mapped[float] = mapped_column(Float)
    call_id: Mapped[str] = mapped_column(String(255))
    cseq: Mapped[int] = mapped_column(Integer)
    q: Mapped[float | None] = mapped_column(Float)
    # Where the REGISTER came from: calls go back there (the phone may be behind NAT).
    source_transport: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str] = mapped_column(String(64))
    source_port: Mapped[int] = mapped_column(Integer)
    instance: Mapped[str | None] = mapped_column(String(255))
    reg_id: Mapped[str | None] = mapped_column(String(32))


# Customer tiers, lowest first. Stored as text (readable in the admin pages and in SQL) and held
# to this list by a CHECK; the ACD's priority rank for each tier lives in
# `callcenter.services.customers`, so reordering or re-weighting tiers needs no migration.
TIERS: Final = ("regular", "silver", "gold", "vip")
NOTE_KINDS: Final = ("note", "complaint", "case")


class Customer(Base):
    """A caller the contact center knows: who they are and how they are treated in the queue."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(
            "tier IN (" + ", ".join(f"'{tier}'" for tier in TIERS) + ")",
            name="tier",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str] = mapped_column(String(200), default="", server_default="")
    tier: Mapped[str] = mapped_column(String(16), default="regular", server_default="regular")
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"Customer(id={self.id!r}, name={self.name!r}, tier={self.tier!r})"


class CustomerPhone(Base):
    """One phone number of a customer, in E.164 form ('+441632960001').

    A number may belong to several customers (a shared office line): caller-ID matching offers
    them all. `ix_customer_phones_e164` is the caller-ID lookup index.
    """

    __tablename__ = "customer_phones"
    __table_args__ = (UniqueConstraint("customer_id", "e164"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE")
    )
    # E.164: '+' and at most 15 digits; 16 characters always suffice.
    e164: Mapped[str] = mapped_column(String(16), index=True)
    # Free text shown to the agent ("mobile", "office"); empty when unknown.
    label: Mapped[str] = mapped_column(String(32), default="", server_default="")


class CustomerNote(Base):
    """A note, complaint or case entry on a customer, newest shown first."""

    __tablename__ = "customer_notes"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind}'" for kind in NOTE_KINDS) + ")",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="note", server_default="note")
    text: Mapped[str] = mapped_column(Text)
    # Username of the author as written at the time (kept when the user is later deleted);
    # None = written by the system (an import, an IVR flow).
    author: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


DISPOSITIONS: Final = (
    "in-progress",  # the call is not over (or the service stopped before it was)
    "answered",  # an agent (or a user called by name) talked to the caller
    "abandoned",  # the caller hung up while waiting in a queue or while it rang
    "ivr",  # the call ended in the IVR (a hangup node, or the caller left before a queue)
    "voicemail",  # the caller left a message (or reached a box)
    "callback",  # the caller asked to be called back and hung up
    "transferred",  # the IVR sent the call on to a user or number
    "failed",  # the call could not be served (no flow, an error)
)


class CallRecord(Base):
    """One call as the contact center saw it: who called, what happened, when, and why.

    Written when the call arrives (so a crash leaves a row, disposition 'in-progress') and
    updated as it goes; `timeline` is the ordered list of events ({"at": ISO time, "kind":
    ..., and the event's data}), routing decisions with their candidates and rule included.
    """

    __tablename__ = "call_records"
    __table_args__ = (
        CheckConstraint(
            "disposition IN (" + ", ".join(f"'{d}'" for d in DISPOSITIONS) + ")",
            name="disposition",
        ),
        # The recordings search walks an index newest first (equal keys in id order) and
        # stops at the page's end: (disposition, id) and (disposition, outcome, id) serve
        # "how it ended", alone and with the wrap-up code. (Migration 0009.)
        Index("ix_call_records_disposition", "disposition", "id"),
        Index("ix_call_records_disposition_outcome", "disposition", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The SIP Call-ID of the caller's dialog: how the engine and the ACD name the call.
    call_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The caller as E.164 when it could be read ('+441632960001'), else as sent; '' withheld.
    caller: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    caller_name: Mapped[str] = mapped_column(String(128), default="", server_default="")
    dialled: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The customer the agent confirmed, or the single match; every match is in the timeline.
    customer_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    queue: Mapped[str | None] = mapped_column(String(128), index=True)
    # Username of the agent who answered (the last one, after a transfer).
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    # 'caller', 'agent' or 'system' (the IVR, a timeout, the service stopping).
    ended_by: Mapped[str | None] = mapped_column(String(16))
    disposition: Mapped[str] = mapped_column(
        String(16), default="in-progress", server_default="in-progress"
    )
    timeline: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The agent's wrap-up code ('resolved', 'follow-up', …): what the call was about, as
    # the agent saw it (`disposition` is how it ended, as the system saw it).
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)


CALLBACK_STATES: Final = ("pending", "dialling", "done", "failed")


class Callback(Base):
    """A caller who asked to be called back: their place in the queue, kept across restarts.

    `place` is the ACD's `CallbackRecord.as_dict()` (queue, entered_at, priority, tier, skills):
    re-queued with the same values after a restart, the callback sorts where the caller was.
    """

    __tablename__ = "callbacks"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in CALLBACK_STATES) + ")",
            name="state",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), unique=True)  # the call that asked
    queue: Mapped[str] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(32))  # E.164, where to call back
    place: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(
        String(16), default="pending", server_default="pending", index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


RECORDING_STATES: Final = ("recording", "complete", "incomplete", "failed")


class Recording(Base):
    """A call's recording: stereo 16-bit 8 kHz WAV, left the caller, right everyone else.

    Written while the call lasts (state 'recording'); `complete` with its duration, size and
    sha256 when closed; `incomplete` when a crash cut it (repaired at the next start, with
    the duration that survived); `failed` while the disk refuses it (the call goes on).
    `path` is relative to the recordings directory. `timeline` holds offsets into the file
    (seconds) of what happened: pause/resume, hold, transfer, disk trouble.
    """

    __tablename__ = "recordings"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in RECORDING_STATES) + ")",
            name="state",
        ),
        # The scored recordings newest first, with their score: the search's QA score filters
        # walk it (a few percent of the rows) without a sort. (Migration 0009.)
        Index(
            "ix_recordings_scored",
            "id",
            "qa_score",
            sqlite_where=text("qa_score IS NOT NULL"),
            postgresql_where=text("qa_score IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(
        String(16), default="recording", server_default="recording", index=True
    )
    channels: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    timeline: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    failure: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # The QA player's waveform: [[left peaks], [right peaks]], 0..1000, computed at close.
    peaks: Mapped[list[list[int]] | None] = mapped_column(JSON)
    # The compressed copy (Opus; the WAV stays the evidence), its size and hash.
    compressed_path: Mapped[str | None] = mapped_column(String(1024))
    compressed_size_bytes: Mapped[int | None] = mapped_column(Integer)
    compressed_sha256: Mapped[str | None] = mapped_column(String(64))
    # Legal hold: deletion (by hand, by retention or by an erasure request) is refused while set.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    legal_hold_reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # Deleted: the files are gone and the row stays as the tombstone (who, when, why: the
    # audit log); the search leaves such rows out.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The mean of the evaluations' scores (0..100), kept by the QA service for the search.
    qa_score: Mapped[float | None] = mapped_column(Float)


SCORECARD_QUESTION_KINDS: Final = ("yes-no", "scale")


class Scorecard(Base):
    """A QA form an administrator defines: weighted questions a reviewer answers per recording.

    `questions` is a list of {"id", "text", "weight", "kind" ('yes-no' or 'scale'), "max"
    (the top of a scale)}; validated by `callcenter.services.qa`. A scorecard that has been used
    is never edited (its evaluations would change meaning): it is retired (`active` false) and a
    new one made.
    """

    __tablename__ = "scorecards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    questions: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class Evaluation(Base):
    """One reviewer's filled-in scorecard for one recording (saving again replaces it).

    `answers` maps question id to the answer (1/0 for yes-no, 0..max for a scale, None for
    "not applicable", left out of the score); `score` is the weighted result, 0..100.
    """

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("recording_id", "scorecard_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    scorecard_id: Mapped[int] = mapped_column(Integer, ForeignKey("scorecards.id"))
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    answers: Mapped[dict[str, object]] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordingComment(Base):
    """A reviewer's comment pinned to a moment of a recording (`at_seconds` into the file)."""

    __tablename__ = "recording_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(64))
    at_seconds: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QaAssignment(Base):
    """A queue whose recordings a QA reviewer may see (a reviewer with none sees none)."""

    __tablename__ = "qa_assignments"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(128), primary_key=True)


class VoicemailMessage(Base):
    """A message a caller left in a box: a recording (mono 8 kHz WAV) attached to the box.

    `path` is relative to the recordings directory; `sha256` and `size_bytes` are of the file
    as closed, so tampering or a truncated file is detectable.
    """

    __tablename__ = "voicemail_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    box: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str] = mapped_column(String(255), index=True)
    caller: Mapped[str] = mapped_column(String(64), default="", server_default="")
    path: Mapped[str] = mapped_column(String(1024))
    duration_seconds: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    heard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit log (listen, download, delete, ...).

    `id` is the chain's own sequence, assigned by the writer (last id + 1, no database
    sequence), so two writers racing collide on the primary key instead of forking the chain.
    `hash` is SHA-256 (hex) over the entry's fields and `prev_hash`; how it is computed, and
    the rule that entries are never updated or deleted, live in `callcenter.services.audit`.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Username as written at the time (kept when the user is later deleted).
    actor: Mapped[str] = mapped_column(String(64), index=True)
    # 'recording.listen', 'recording.delete', 'legal-hold.set', 'erasure', 'monitor.listen', ...
    action: Mapped[str] = mapped_column(String(32))
    # What was acted on: 'recording:42', 'call:<call-id>', 'customer:7'.
    subject: Mapped[str] = mapped_column(String(255), index=True)
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
