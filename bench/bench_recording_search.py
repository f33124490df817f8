"""Recordings search with a million recordings (issue 6: p99 under 100 ms).

    .venv/bin/python -m bench.bench_recording_search [--recordings 1000000] [--queries 200]
        [--peaks-buckets 1000] [--no-analyze] [--rebuild] [--kind-budget 8] [--kinds KIND ...]
        [--json FILE]

Builds (once) a SQLite file migrated by the real Alembic scripts (so the real indexes) holding
`--recordings` recordings and their call records, one per call, as a year of an answered-call
center makes them: ~50 agents over 10 queues, 200,000 customers (who call with a skew: a few
call often), unknown and withheld callers, business-hours arrival times over 2025, talk times
10-3600 s (log-normal), dispositions, wrap-up outcomes, recording states, timelines, the
QA player's waveform (`peaks`, 2 x `--peaks-buckets` levels, as `RecordingService` stores it:
the bulk of a row), a mean QA score on 5 % of the recordings, a legal hold on 0.3 %, and 2 %
deleted (tombstones the search leaves out). The load is raw SQL in one transaction with the
journal off and the secondary indexes dropped and re-made from the migrated DDL afterwards; then
ANALYZE. The file is cached under the temp dir, keyed by a hash of the migrations, this
generator's version and its parameters: a rerun only measures. (`--no-analyze` empties
sqlite_stat1 for the run: the service itself never runs ANALYZE, so that is how a production
file is planned.)

Then times `RecordingCatalogue.search` (the real service, its statement, a session per call,
aiosqlite's thread hop included) one awaited call at a time, `--queries` random queries of each
kind below (QA reviewers restricted to their queues among them), every answer checked against
its filters, its viewer's queues and the deleted recordings. Writes
bench/results-recordings.json. Figures depend on the machine (and on the file being in the page
cache, as it is on a warm server); compare runs on one machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, insert

from callcenter.cli import migrate, run_async
from callcenter.db.models import Base, Recording
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.recordings.catalogue import (
    RecordingCatalogue,
    RecordingQuery,
    RecordingSummary,
)
from callcenter.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results-recordings.json"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"
CACHE_ROOT = Path(tempfile.gettempdir()) / "callcenter-bench-recordings"
DATABASE_FILE = "callcenter.db"
TARGET_P99_MS = 100.0
# Bump when the generated data changes: the cache key includes it.
GENERATOR_VERSION = 2
SEED = 6

YEAR_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DAYS = 365
CUSTOMERS = 200_000
AGENTS = tuple(f"agent{n:02d}" for n in range(1, 51))
QUEUES = {  # name: share of the calls
    "support": 25,
    "sales": 20,
    "billing": 12,
    "technical": 12,
    "orders": 8,
    "retention": 6,
    "returns": 6,
    "enquiries": 6,
    "complaints": 3,
    "vip": 2,
}
# The desk's wrap-up codes (callcenter.services.desk.service.DISPOSITIONS) and their shares.
OUTCOMES = {
    "resolved": 40,
    "information": 18,
    "follow-up": 10,
    "sale": 8,
    "no-sale": 9,
    "escalated": 6,
    "complaint": 6,
    "wrong-number": 3,
}
WEEKDAY_WEIGHT = (1.0, 1.0, 1.0, 1.0, 0.95, 0.35, 0.12)  # Monday first
HOUR_WEIGHT = (
    0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 1.5, 5, 8, 9, 9,
    7, 8, 9, 8.5, 7.5, 6, 4, 2, 1, 0.6, 0.3, 0.2,
)  # fmt: skip
STILL_RECORDING = 25  # the newest calls are still going on
TIERS = ("regular",) * 85 + ("silver",) * 10 + ("gold",) * 4 + ("vip",)

CALL_COLUMNS = (
    "id", "call_id", "caller", "caller_name", "dialled", "customer_id", "queue", "agent",
    "arrived_at", "queued_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds",
    "ended_by", "disposition", "timeline", "notes", "outcome",
)  # fmt: skip
RECORDING_COLUMNS = (
    "id", "call_id", "path", "state", "channels", "started_at", "ended_at", "duration_seconds",
    "size_bytes", "sha256", "timeline", "failure", "peaks", "compressed_path",
    "compressed_size_bytes", "compressed_sha256", "legal_hold", "legal_hold_reason", "deleted_at",
    "qa_score",
)  # fmt: skip
SCORED = 0.05  # the share of recordings a QA reviewer has scored
LEGAL_HOLD = 0.003
DELETED = 0.02  # deleted (by hand, retention or an erasure request): the row is a tombstone
HOLD_REASONS = (
    "Litigation: claim 2025-114",
    "Regulator's request (complaint review)",
    "Fraud investigation",
)
NOTES = (
    "",
    "",
    "Customer asked about the renewal date; sent the terms by email.",
    "Card declined twice, asked to call back after speaking to the bank.",
    "Delivery missing a part: replacement ordered, reference given.",
    "Wants to cancel; retention offer made, will think about it.",
    "Password reset walked through; works now.",
)


# --- the data ------------------------------------------------------------------------------


def _stamp(micros: int, day_text: list[str], sep: str = " ") -> str:
    """Microseconds since YEAR_START as SQLAlchemy's SQLite DATETIME stores them (UTC)."""
    day, rest = divmod(micros, 86_400_000_000)
    seconds, us = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{day_text[day]}{sep}{hours:02d}:{minutes:02d}:{seconds:02d}.{us:06d}"


def _day_texts() -> list[str]:
    return [f"{YEAR_START + dt.timedelta(days=d):%Y-%m-%d}" for d in range(DAYS + 2)]


def _check_stamp_format() -> None:
    """The raw load writes timestamps as text: make sure it is the ORM's text."""
    engine = create_sync_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[Base.metadata.tables["recordings"]])
    micros = 123 * 86_400_000_000 + 45_296_000_789  # 2025-05-04 12:34:56.000789
    with engine.begin() as connection:
        connection.execute(
            insert(Recording).values(
                call_id="x",
                path="p",
                timeline=[],
                started_at=YEAR_START + dt.timedelta(microseconds=micros),
            )
        )
        stored = connection.exec_driver_sql("SELECT started_at FROM recordings").scalar_one()
    engine.dispose()
    ours = _stamp(micros, _day_texts())
    if stored != ours:
        raise SystemExit(f"timestamp text differs from the ORM's: {ours!r} != {stored!r}")


def customer_number(i: int) -> str:
    # GB mobiles; a fixed permutation spreads neighbours apart in the index.
    return f"+447{(i * 7_919_993) % 1_000_000_000:09d}"


def stranger_number(i: int) -> str:
    # Callers the CRM does not know: London landlines and a few US numbers.
    if i % 10 == 0:
        return f"+1212{(i * 6_700_417) % 10_000_000:07d}"
    return f"+4420{(i * 9_999_991) % 100_000_000:08d}"


def _peaks_pool(rng: random.Random, buckets: int, size: int = 256) -> list[str | None]:
    """Waveforms as the recorder stores them (json.dumps of [[left], [right]], 0..1000)."""
    if buckets == 0:
        return [None]
    pool: list[str | None] = []
    for _ in range(size):
        channels = []
        for _ in range(2):
            level = rng.uniform(150, 700)
            values = []
            for _ in range(buckets):
                if rng.random() < 0.25:  # the other side talks: near silence
                    values.append(rng.randrange(0, 25))
                else:
                    level = min(1000.0, max(40.0, level * rng.uniform(0.8, 1.25)))
                    values.append(int(level))
            channels.append(values)
        pool.append(json.dumps(channels))
    return pool


def _arrivals(rng: random.Random, count: int) -> list[int]:
    """`count` arrival times (microseconds since YEAR_START), sorted, in business hours."""
    weights: list[float] = []
    for day in range(DAYS):
        weekday = (YEAR_START + dt.timedelta(days=day)).weekday()
        weights.extend(WEEKDAY_WEIGHT[weekday] * h for h in HOUR_WEIGHT)
    hours = rng.choices(range(len(weights)), weights=weights, k=count)
    arrivals = [h * 3_600_000_000 + rng.randrange(3_600_000_000) for h in hours]
    arrivals.sort()
    return arrivals


@dataclass(slots=True)
class Batch:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    recordings: list[tuple[Any, ...]] = field(default_factory=list)


def generate(count: int, peaks_buckets: int, batch_size: int = 50_000) -> Iterator[Batch]:
    """The calls and their recordings, oldest first (ids in arrival order), in batches."""
    rng = random.Random(SEED)
    days = _day_texts()
    peaks_pool = _peaks_pool(rng, peaks_buckets)
    queues = list(QUEUES)
    queue_weights = list(QUEUES.values())
    # Every agent has a main queue (in proportion to the calls) and helps out in another.
    staff: dict[str, list[str]] = {q: [] for q in queues}
    for index, agent in enumerate(AGENTS):
        staff[rng.choices(queues, weights=queue_weights)[0]].append(agent)
        staff[queues[index % len(queues)]].append(agent)
    outcomes = list(OUTCOMES)
    outcome_weights = list(OUTCOMES.values())
    arrivals = _arrivals(rng, count)
    batch = Batch()
    for index, arrived in enumerate(arrivals):
        row_id = index + 1
        call_id = f"{rng.getrandbits(96):024x}@pbx.example.net"
        roll = rng.random()
        if roll < 0.78:
            # A known customer; a few call often (customer 1 about 0.03% of all calls).
            customer = 1 + int(CUSTOMERS * rng.random() ** 1.6)
            caller: str = customer_number(customer)
            customer_id: int | None = customer
            name = f"Customer {customer}"
        elif roll < 0.98:
            customer_id, name = None, ""
            caller = stranger_number(rng.randrange(400_000))
        else:
            customer_id, caller, name = None, "", ""  # withheld
        queue = rng.choices(queues, weights=queue_weights)[0]
        agent = rng.choice(staff[queue])
        queued = arrived + rng.randrange(4_000_000, 40_000_000)  # the IVR
        wait = min(900.0, rng.expovariate(1 / 35))
        answered = queued + int(wait * 1_000_000)
        talk = min(3600.0, max(10.0, rng.lognormvariate(math.log(240), 0.9)))
        ended = answered + int(talk * 1_000_000)
        still = row_id > count - STILL_RECORDING
        state_roll = rng.random()
        if still:
            state, disposition = "recording", "in-progress"
        elif state_roll < 0.004:  # a crash cut it: repaired at the next start
            state, disposition = "incomplete", "in-progress"
        elif state_roll < 0.008:
            state, disposition = "incomplete", "answered"
        elif state_roll < 0.010:
            state, disposition = "failed", "answered"  # the disk refused it
        else:
            state = "complete"
            d = rng.random()
            disposition = "answered" if d < 0.975 else "transferred" if d < 0.992 else "failed"
        ended_text = None if still or disposition == "in-progress" else _stamp(ended, days)
        queued_text = _stamp(queued, days)
        answered_text = _stamp(answered, days)
        arrived_text = _stamp(arrived, days)
        outcome = None
        if ended_text is not None and rng.random() < 0.95:
            outcome = rng.choices(outcomes, weights=outcome_weights)[0]
        iso = (
            _stamp(arrived, days, "T") + "+00:00",
            _stamp(queued, days, "T") + "+00:00",
            _stamp(answered, days, "T") + "+00:00",
        )
        timeline = (
            f'[{{"at": "{iso[0]}", "kind": "arrived", "caller": "{caller}", '
            f'"dialled": "+441632960000"}}, {{"at": "{iso[0]}", "kind": "ivr-started", '
            f'"flow": "main"}}, {{"at": "{iso[1]}", "kind": "queued", "queue": "{queue}"}}, '
            f'{{"at": "{iso[2]}", "kind": "routed", "queue": "{queue}", "rule": '
            f'"longest-idle", "candidates": ["{agent}", "{rng.choice(AGENTS)}"], '
            f'"agent": "{agent}"}}, {{"at": "{iso[2]}", "kind": "answered", '
            f'"agent": "{agent}"}}]'
        )
        by = None if ended_text is None else "caller" if rng.random() < 0.6 else "agent"
        batch.calls.append(
            (
                row_id, call_id, caller, name, "+441632960000", customer_id, queue, agent,
                arrived_text, queued_text, answered_text, ended_text, round(wait, 3),
                None if ended_text is None else round(talk, 3), by, disposition, timeline,
                rng.choice(NOTES) if outcome is not None else "", outcome,
            )
        )  # fmt: skip
        finished = not still
        duration = round(talk, 3) if finished else None
        size = 44 + int(talk * 8000) * 4 if finished else None
        stem = f"calls/{days[answered // 86_400_000_000].replace('-', '/')}/{row_id:08x}"
        compressed = finished and state == "complete"
        paused = rng.random() < 0.08 and talk > 60
        score = None
        if finished and rng.random() < SCORED:  # most calls do well, a tail does badly
            score = round(100 * rng.betavariate(5, 1.6), 1)
        hold = finished and rng.random() < LEGAL_HOLD
        deleted = None
        if finished and not hold and rng.random() < DELETED:
            deleted = _stamp(
                min(
                    ended + rng.randrange(86_400_000_000, 60 * 86_400_000_000),
                    (DAYS + 1) * 86_400_000_000 - 1,
                ),
                days,
            )
        batch.recordings.append(
            (
                row_id, call_id, f"{stem}.wav", state, 2, answered_text,
                _stamp(ended, days) if finished else None, duration, size,
                f"{rng.getrandbits(256):064x}" if finished else None,
                (
                    f'[{{"at_seconds": {talk / 3:.3f}, "kind": "paused", "by": "{agent}"}}, '
                    f'{{"at_seconds": {talk / 2:.3f}, "kind": "resumed", "by": "{agent}"}}]'
                    if paused
                    else "[]"
                ),
                "No space left on device" if state == "failed" else "",
                rng.choice(peaks_pool) if finished and state != "failed" else None,
                f"{stem}.opus" if compressed else None,
                int(talk * 4000) if compressed else None,
                f"{rng.getrandbits(256):064x}" if compressed else None,
                int(hold), rng.choice(HOLD_REASONS) if hold else "", deleted, score,
            )
        )  # fmt: skip
        if len(batch.calls) >= batch_size:
            yield batch
            batch = Batch()
    if batch.calls:
        yield batch


# --- the database file ---------------------------------------------------------------------


def cache_key(args: argparse.Namespace) -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(
        json.dumps(
            [GENERATOR_VERSION, SEED, args.recordings, args.peaks_buckets, CUSTOMERS]
        ).encode()
    )
    return digest.hexdigest()[:16]


def build(data_dir: Path, args: argparse.Namespace) -> None:
    """Migrate a fresh file in `data_dir` and load it."""
    _check_stamp_format()
    # Alembic's env runs its own event loop: migrate before any other starts.
    if migrate(Settings(data_dir=data_dir)) != 0:
        raise SystemExit("migration failed")
    start = time.perf_counter()
    db = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        # For the load only: nothing to recover if it fails half way (the directory goes).
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("PRAGMA temp_store=MEMORY")
        tables = ("customers", "customer_phones", "call_records", "recordings")
        marks = ",".join("?" * len(tables))
        indexes = db.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            tables,
        ).fetchall()
        db.execute("BEGIN")
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        rng = random.Random(SEED + 1)
        db.executemany(
            "INSERT INTO customers (id, name, company, tier, email, created_at) "
            "VALUES (?, ?, ?, ?, ?, '2024-06-01 09:00:00.000000')",
            (
                (i, f"Customer {i}", f"Company {i % 40_000}", rng.choice(TIERS),
                 f"customer{i}@example.com")
                for i in range(1, CUSTOMERS + 1)
            ),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO customer_phones (customer_id, e164, label) VALUES (?, ?, 'mobile')",
            ((i, customer_number(i)) for i in range(1, CUSTOMERS + 1)),
        )
        calls_sql = (
            f"INSERT INTO call_records ({', '.join(CALL_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
        )
        recordings_sql = (
            f"INSERT INTO recordings ({', '.join(RECORDING_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(RECORDING_COLUMNS))})"
        )
        loaded = 0
        for batch in generate(args.recordings, args.peaks_buckets):
            db.executemany(calls_sql, batch.calls)
            db.executemany(recordings_sql, batch.recordings)
            loaded += len(batch.calls)
            if loaded % 200_000 == 0:
                print(f"  {loaded:,} calls in {time.perf_counter() - start:.0f} s", flush=True)
        print(f"  re-making {len(indexes)} indexes", flush=True)
        for _, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
        violations = db.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise SystemExit(f"foreign keys broken: {violations[:5]}")
        db.execute("ANALYZE")
        db.execute("PRAGMA journal_mode=WAL")  # as the service opens it
    finally:
        db.close()
    print(
        f"built {args.recordings:,} recordings in {time.perf_counter() - start:.0f} s", flush=True
    )


BYTES_PER_RECORDING = 14_000
"""Disk the built database takes per recording, with headroom (11.5 GB for 1,000,000)."""


def database(args: argparse.Namespace) -> tuple[Path, float | None]:
    """The cached data directory for these parameters, built if needed; the build time."""
    key = cache_key(args)
    ready = CACHE_ROOT / key
    if ready.is_dir() and not args.rebuild:
        return ready, None
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # About 12 KB a recording (its waveform is most of it): say so rather than fill the disk.
    needed = args.recordings * BYTES_PER_RECORDING
    free = shutil.disk_usage(CACHE_ROOT).free
    if free < needed:
        print(
            f"SKIPPED: building {args.recordings:,} recordings needs about "
            f"{needed / 1e9:.1f} GB free in {CACHE_ROOT}, {free / 1e9:.1f} GB are",
            flush=True,
        )
        raise SystemExit(0)
    for stale in CACHE_ROOT.iterdir():  # other keys: an older schema or other parameters
        if stale.is_dir():
            print(f"removing the stale benchmark database {stale}", flush=True)
            shutil.rmtree(stale)
    building = Path(tempfile.mkdtemp(prefix=f"building-{key}-", dir=CACHE_ROOT))
    start = time.perf_counter()
    try:
        build(building, args)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    building.rename(ready)
    return ready, time.perf_counter() - start


def set_statistics(db_file: Path, analyzed: bool) -> None:
    """ANALYZE's statistics present (as built) or absent (as the service leaves a file)."""
    db = sqlite3.connect(db_file, isolation_level=None)
    try:
        has_table = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        ).fetchone()[0]
        rows = db.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] if has_table else 0
        if analyzed and not rows:
            print("running ANALYZE", flush=True)
            db.execute("ANALYZE")
        elif not analyzed and rows:
            db.execute("DELETE FROM sqlite_stat1")
    finally:
        db.close()


# --- the queries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Population:
    """What the random queries are drawn from, read back from the file."""

    max_id: int
    first: dt.datetime
    last: dt.datetime
    agents: list[str]
    queues: list[str]
    customers: list[int]  # drawn from calls: a customer who calls often comes up often
    numbers: list[str]
    dispositions: list[str]
    outcomes: list[str]
    deleted: frozenset[int]  # the search must never return these


def population(db_file: Path) -> Population:
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        max_id, first, last = db.execute(
            "SELECT max(id), min(started_at), max(started_at) FROM recordings"
        ).fetchone()
        rng = random.Random(SEED + 2)
        sample = [rng.randrange(1, max_id + 1) for _ in range(5000)]
        marks = ",".join("?" * len(sample))
        rows = db.execute(
            f"SELECT customer_id, caller FROM call_records WHERE id IN ({marks})", sample
        ).fetchall()

        def distinct(column: str) -> list[str]:
            found = db.execute(
                f"SELECT DISTINCT {column} FROM call_records WHERE {column} IS NOT NULL"
            )
            return sorted(value for (value,) in found)

        return Population(
            max_id=max_id,
            first=dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC),
            last=dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC),
            agents=distinct("agent"),
            queues=distinct("queue"),
            customers=[c for c, _ in rows if c is not None],
            numbers=[n for _, n in rows if n],
            dispositions=distinct("disposition"),
            outcomes=distinct("outcome"),
            deleted=frozenset(
                i for (i,) in db.execute("SELECT id FROM recordings WHERE deleted_at IS NOT NULL")
            ),
        )
    finally:
        db.close()


def _window(rng: random.Random, pop: Population, days: int) -> tuple[dt.datetime, dt.datetime]:
    """A `days`-long window starting at a random midnight in the data's year."""
    span = (pop.last - pop.first).days - days
    since = pop.first.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(
        days=rng.randrange(max(1, span))
    )
    return since, since + dt.timedelta(days=days)


def _durations(rng: random.Random) -> tuple[float | None, float | None]:
    shape = rng.randrange(3)
    if shape == 0:  # long calls
        return float(rng.randrange(600, 3001, 60)), None
    if shape == 1:  # short calls
        return None, float(rng.randrange(15, 61, 5))
    low = rng.randrange(10, 1800, 10)
    return float(low), float(low + rng.randrange(30, 600, 10))


Maker = Callable[[random.Random, Population], RecordingQuery]

KINDS: dict[str, tuple[str, Maker]] = {
    "no_filter": ("first page, no filter", lambda r, p: RecordingQuery()),
    "no_filter_200": ("first page of 200 (MAX_LIMIT)", lambda r, p: RecordingQuery(limit=200)),
    "deep_page": (
        "no filter, before_id anywhere back",
        lambda r, p: RecordingQuery(before_id=r.randrange(100, p.max_id)),
    ),
    "agent": ("agent", lambda r, p: RecordingQuery(agent=r.choice(p.agents))),
    "agent_deep": (
        "agent, before_id anywhere back",
        lambda r, p: RecordingQuery(agent=r.choice(p.agents), before_id=r.randrange(p.max_id)),
    ),
    "queue_week": (
        "queue + a week",
        lambda r, p: RecordingQuery(queue=r.choice(p.queues), **_since_until(_window(r, p, 7))),
    ),
    "day": ("a day, nothing else", lambda r, p: RecordingQuery(**_since_until(_window(r, p, 1)))),
    "customer": ("customer", lambda r, p: RecordingQuery(customer_id=r.choice(p.customers))),
    "number": ("caller number", lambda r, p: RecordingQuery(number=r.choice(p.numbers))),
    "disposition_outcome": (
        "disposition + outcome (any value)",
        lambda r, p: RecordingQuery(
            disposition=r.choice(p.dispositions), outcome=r.choice(p.outcomes)
        ),
    ),
    "disposition": (
        "disposition (any value)",
        lambda r, p: RecordingQuery(disposition=r.choice(p.dispositions)),
    ),
    "outcome": ("outcome", lambda r, p: RecordingQuery(outcome=r.choice(p.outcomes))),
    "duration": (
        "duration range (long, short or between)",
        lambda r, p: RecordingQuery(**_min_max(_durations(r))),
    ),
    "state": (
        "state incomplete or failed",
        lambda r, p: RecordingQuery(state=r.choice(("incomplete", "failed"))),
    ),
    "agent_month_long": (
        "agent + 30 days + longer than 5 min",
        lambda r, p: RecordingQuery(
            agent=r.choice(p.agents), min_seconds=300.0, **_since_until(_window(r, p, 30))
        ),
    ),
    "queue_disposition_outcome": (
        "queue + disposition + outcome",
        lambda r, p: RecordingQuery(
            queue=r.choice(p.queues),
            disposition=r.choice(p.dispositions),
            outcome=r.choice(p.outcomes),
        ),
    ),
    "queue_quarter": (
        "queue + 90 days",
        lambda r, p: RecordingQuery(queue=r.choice(p.queues), **_since_until(_window(r, p, 90))),
    ),
    "customer_quarter": (
        "customer + 90 days",
        lambda r, p: RecordingQuery(
            customer_id=r.choice(p.customers), **_since_until(_window(r, p, 90))
        ),
    ),
    "score_band": (
        "QA score below 60, 60-80 or 90 and above",
        lambda r, p: RecordingQuery(**_score_band(r)),
    ),
    "scored_agent": (
        "scored, one agent's",
        lambda r, p: RecordingQuery(scored=True, agent=r.choice(p.agents)),
    ),
    "legal_hold": ("on legal hold", lambda r, p: RecordingQuery(legal_hold=True)),
    "viewer": (
        "a QA reviewer's first page: 2-3 queues",
        lambda r, p: RecordingQuery(queues=_viewer(r, p)),
    ),
    "viewer_deep": (
        "a QA reviewer's 2-3 queues, before_id anywhere back",
        lambda r, p: RecordingQuery(queues=_viewer(r, p), before_id=r.randrange(p.max_id)),
    ),
    "viewer_week": (
        "a QA reviewer's 2-3 queues + a week",
        lambda r, p: RecordingQuery(queues=_viewer(r, p), **_since_until(_window(r, p, 7))),
    ),
    "viewer_agent": (
        "a QA reviewer's 2-3 queues + an agent (any: often none of theirs)",
        lambda r, p: RecordingQuery(queues=_viewer(r, p), agent=r.choice(p.agents)),
    ),
    "viewer_outcome": (
        "a QA reviewer's 2-3 queues + outcome",
        lambda r, p: RecordingQuery(queues=_viewer(r, p), outcome=r.choice(p.outcomes)),
    ),
    "viewer_score": (
        "a QA reviewer's 2-3 queues + QA score band",
        lambda r, p: RecordingQuery(queues=_viewer(r, p), **_score_band(r)),
    ),
    "viewer_unscored_month": (
        "a QA reviewer's 2-3 queues + unscored + 30 days",
        lambda r, p: RecordingQuery(
            queues=_viewer(r, p), scored=False, **_since_until(_window(r, p, 30))
        ),
    ),
    "outcome_week_short": (
        "outcome + a week + shorter than a minute",
        lambda r, p: RecordingQuery(
            outcome=r.choice(p.outcomes), max_seconds=60.0, **_since_until(_window(r, p, 7))
        ),
    ),
}


def _score_band(rng: random.Random) -> dict[str, Any]:
    low, high = rng.choice(((None, 60.0), (60.0, 80.0), (90.0, None)))
    return {"min_score": low, "max_score": high}


def _viewer(rng: random.Random, pop: Population) -> frozenset[str]:
    return frozenset(rng.sample(pop.queues, rng.randrange(2, 4)))


def _since_until(window: tuple[dt.datetime, dt.datetime]) -> dict[str, Any]:
    return {"since": window[0], "until": window[1]}


def _min_max(bounds: tuple[float | None, float | None]) -> dict[str, Any]:
    return {"min_seconds": bounds[0], "max_seconds": bounds[1]}


def check(
    query: RecordingQuery, found: Sequence[RecordingSummary], deleted: frozenset[int]
) -> None:
    """The answer is what was asked for: filters hold, newest first, within the page (the
    generated recording ids and call record ids are in the same order), nothing deleted."""
    wrong: list[str] = []
    if len(found) > query.limit:
        wrong.append(f"{len(found)} rows for limit {query.limit}")
    ids = [s.id for s in found]
    if ids != sorted(ids, reverse=True) or len(set(ids)) != len(ids):
        wrong.append("not newest first")
    for s in found:
        pairs: list[tuple[object, object]] = [
            (query.agent, s.agent),
            (query.queue, s.queue),
            (query.customer_id, s.customer_id),
            (query.number, s.caller),
            (query.disposition, s.disposition),
            (query.outcome, s.outcome),
            (query.state, s.state),
            (query.legal_hold, s.legal_hold),
            (query.scored, None if query.scored is None else s.qa_score is not None),
        ]
        if any(want is not None and want != got for want, got in pairs):
            wrong.append(f"row {s.id} does not match")
        if query.queues is not None and s.queue not in query.queues:
            wrong.append(f"row {s.id} is in {s.queue!r}, not in the viewer's queues")
        if s.id in deleted:
            wrong.append(f"row {s.id} is deleted")
        score = s.qa_score
        if (query.min_score is not None or query.max_score is not None) and (
            score is None
            or (query.min_score is not None and score < query.min_score)
            or (query.max_score is not None and score > query.max_score)
        ):
            wrong.append(f"row {s.id} out of the score range")
        if query.before_id is not None and s.id >= query.before_id:
            wrong.append(f"row {s.id} not before {query.before_id}")
        if (query.since is not None and s.started_at < query.since) or (
            query.until is not None and s.started_at >= query.until
        ):
            wrong.append(f"row {s.id} out of the time range")
        seconds = s.duration_seconds
        if (query.min_seconds is not None or query.max_seconds is not None) and (
            seconds is None
            or (query.min_seconds is not None and seconds < query.min_seconds)
            or (query.max_seconds is not None and seconds > query.max_seconds)
        ):
            wrong.append(f"row {s.id} out of the duration range")
    if wrong:
        raise SystemExit(f"wrong answer to {query!r}: {wrong[:3]}")


# --- measuring -----------------------------------------------------------------------------


def percentile(sorted_ms: list[float], p: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


@dataclass(slots=True)
class KindResult:
    name: str
    label: str
    samples_ms: list[float] = field(default_factory=list)
    rows: int = 0
    empty: int = 0
    stopped_early: bool = False
    slowest_ms: float = 0.0
    slowest_query: RecordingQuery | None = None
    slowest_sql: tuple[str, tuple[Any, ...]] | None = None


async def measure(data_dir: Path, pop: Population, args: argparse.Namespace) -> list[KindResult]:
    settings = Settings(data_dir=data_dir)
    engine = create_engine(settings.database_url)
    last_sql: list[tuple[str, tuple[Any, ...]]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        last_sql[:] = [(statement, tuple(parameters or ()))]

    results: list[KindResult] = []
    try:
        catalogue = RecordingCatalogue(create_sessionmaker(engine), data_dir / "recordings")
        rng = random.Random(SEED + 3)
        for warm in range(20):  # the pool, the statement cache, the file's pages
            await catalogue.search(RecordingQuery(before_id=pop.max_id - warm * 10_000))
        for name, (label, make) in KINDS.items():
            if args.kinds and name not in args.kinds:
                continue
            result = KindResult(name, label)
            queries = [make(rng, pop) for _ in range(args.queries)]
            for _ in range(3):  # warm-up per kind (other parameters), not counted
                await catalogue.search(make(rng, pop))
            spent = 0.0
            for query in queries:
                t0 = time.perf_counter()
                found = await catalogue.search(query)
                elapsed = time.perf_counter() - t0
                ms = elapsed * 1000
                spent += elapsed
                check(query, found, pop.deleted)
                result.samples_ms.append(ms)
                result.rows += len(found)
                result.empty += not found
                if ms > result.slowest_ms:
                    result.slowest_ms, result.slowest_query = ms, query
                    result.slowest_sql = last_sql[0] if last_sql else None
                if spent > args.kind_budget and len(result.samples_ms) < len(queries):
                    result.stopped_early = True
                    break
            ordered = sorted(result.samples_ms)
            print(
                f"{name:<28} n={len(ordered):<4} p50 {percentile(ordered, 50):8.2f} ms  "
                f"p99 {percentile(ordered, 99):8.2f} ms  max {ordered[-1]:8.2f} ms"
                + ("  (stopped: time budget)" if result.stopped_early else ""),
                flush=True,
            )
            results.append(result)
    finally:
        await engine.dispose()
    return results


def query_plan(db_file: Path, sql: str, parameters: Sequence[Any]) -> list[str]:
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(parameters)).fetchall()
    finally:
        db.close()
    return [f"{'  ' * _depth(rows, r[1])}{r[3]}" for r in rows]


def _depth(rows: list[Any], parent: int) -> int:
    ids = {r[0]: r[1] for r in rows}
    depth = 0
    while parent in ids:
        depth += 1
        parent = ids[parent]
    return depth


def machine() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": model,
        "nproc": usable or os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "system": f"{platform.system()} {platform.release()}",
    }


def _query_text(query: RecordingQuery) -> str:
    fields = {
        name: getattr(query, name)
        for name in RecordingQuery.__slots__
        if getattr(query, name) is not None and not (name == "limit" and query.limit == 50)
    }
    if query.queues is not None:
        fields["queues"] = sorted(query.queues)
    return ", ".join(
        f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v!r}" for k, v in fields.items()
    )


def report(
    results: list[KindResult], info: dict[str, object], db_file: Path, analyzed: bool
) -> tuple[dict[str, object], list[dict[str, object]], str]:
    lines = [
        "| kind | queries | rows/query | p50 ms | p95 ms | p99 ms | max ms | p99 < 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    kinds: list[dict[str, object]] = []
    everything: list[float] = []
    for r in results:
        ordered = sorted(r.samples_ms)
        everything.extend(ordered)
        p50, p95, p99 = (percentile(ordered, p) for p in (50, 95, 99))
        ok = p99 < TARGET_P99_MS
        lines.append(
            f"| {r.name} ({r.label}) | {len(ordered)}{' *' if r.stopped_early else ''} | "
            f"{r.rows / len(ordered):.1f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
            f"{ordered[-1]:.1f} | {'yes' if ok else '**no**'} |"
        )
        entry: dict[str, object] = {
            "kind": r.name,
            "what": r.label,
            "queries": len(ordered),
            "stopped_early": r.stopped_early,
            "rows_per_query": round(r.rows / len(ordered), 1),
            "empty_answers": r.empty,
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "p99_ms": round(p99, 2),
            "max_ms": round(ordered[-1], 2),
            "pass": ok,
        }
        if r.slowest_query is not None:
            entry["slowest_query"] = _query_text(r.slowest_query)
        if r.slowest_sql is not None:
            entry["slowest_plan"] = query_plan(db_file, *r.slowest_sql)
        kinds.append(entry)
    everything.sort()
    overall = {q: round(percentile(everything, q), 2) for q in (50, 95, 99)}
    all_ok = all(bool(k["pass"]) for k in kinds)
    lines.append(
        f"| **all** | {len(everything)} | | {overall[50]:.1f} | {overall[95]:.1f} | "
        f"{overall[99]:.1f} | {everything[-1]:.1f} | {'yes' if all_ok else '**no**'} |"
    )
    if any(r.stopped_early for r in results):
        lines.append("\n\\* stopped at the per-kind time budget (`--kind-budget`): fewer queries")
    table = "\n".join(lines)
    summary: dict[str, object] = {
        "scenario": "recording_search",
        "machine": info,
        "database": "sqlite (aiosqlite), WAL, "
        + ("ANALYZE statistics" if analyzed else "no ANALYZE statistics"),
        "overall": {
            **{f"p{q}_ms": v for q, v in overall.items()},
            "max_ms": round(everything[-1], 2),
        },
        "target_p99_ms": TARGET_P99_MS,
        "pass": all_ok,
        "kinds": kinds,
        "table": table,
    }
    return summary, kinds, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="per kind")
    parser.add_argument(
        "--peaks-buckets", type=int, default=1000, help="waveform levels per channel (0: none)"
    )
    parser.add_argument("--no-analyze", action="store_true", help="plan without sqlite_stat1")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached database")
    parser.add_argument(
        "--kind-budget", type=float, default=8.0, help="seconds of queries per kind at most"
    )
    parser.add_argument("--kinds", nargs="*", choices=sorted(KINDS), help="only these kinds")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.recordings < 1000 or args.queries < 1 or args.peaks_buckets < 0:
        parser.error("need at least 1000 recordings, 1 query, 0 or more buckets")

    started = time.perf_counter()
    data_dir, built_s = database(args)
    db_file = data_dir / DATABASE_FILE
    print(f"database {db_file} ({db_file.stat().st_size / 1e9:.2f} GB)", flush=True)
    set_statistics(db_file, analyzed=not args.no_analyze)
    pop = population(db_file)
    results = run_async(lambda: measure(data_dir, pop, args))
    info = machine()
    result, kinds, table = report(results, info, db_file, analyzed=not args.no_analyze)
    result.update(
        recordings=pop.max_id,
        customers=CUSTOMERS,
        agents=len(pop.agents),
        queues=len(pop.queues),
        peaks_buckets=args.peaks_buckets,
        db_gigabytes=round(db_file.stat().st_size / 1e9, 2),
        build_seconds=None if built_s is None else round(built_s, 1),
        total_seconds=round(time.perf_counter() - started, 1),
    )
    print(f"\nmachine: {json.dumps(info)}\n\n{table}\n")
    for kind in kinds:
        if not kind["pass"] and isinstance(plan := kind.get("slowest_plan"), list):
            print(f"{kind['kind']}: slowest {kind['slowest_query']}")
            print("  " + "\n  ".join(plan))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
